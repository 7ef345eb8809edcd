// A real, throwaway PostgreSQL 15 for *_pgtest.cpp suites.
//
// Started once per test process (lazily, on the first Shared() call) with
// scripts/pg-tmp in a fresh folder /tmp/continuum-pg-XXXXXX, on a free port. The
// migrations of db/migrations are applied once to a template database
// (continuum_template); `continuum` and every FreshDatabase() are copies of it, so a
// test that wants isolation pays a CREATE DATABASE (~tens of ms), not a migration.
//
// The instance is stopped and its folder removed at exit — also when the test process
// crashes or is killed: a watchdog process (own session, so Ctrl-C does not reach it)
// waits for the test process to go away and then runs `pg-tmp stop` and removes the
// folder. Set CONTINUUM_KEEP_PG=1 to keep the folder (postgres.log) for debugging.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace continuum::testing {

class PgInstance {
 public:
  static PgInstance& Shared();

  // postgresql://postgres@127.0.0.1:PORT/continuum (migrated). Shared by all tests of
  // the process: prefer FreshDatabase() for tests that write.
  std::string url() const;
  // Creates a new database from the migrated template and returns its URL.
  std::string FreshDatabase();
  // URL of another database of this instance (e.g. "postgres"), as `user`.
  std::string UrlFor(const std::string& database, const std::string& user = "postgres") const;
  // `url` (one of this class's superuser URLs) as another role: "continuum_portal" (what
  // `continuum serve` connects as) or "continuum_owner" (migrations; owns the tables).
  static std::string AsRole(const std::string& url, const std::string& user);
  static std::string PortalUrl(const std::string& url) { return AsRole(url, "continuum_portal"); }

  // Blocking libpq helpers; throw std::runtime_error with the server's message.
  void Exec(const std::string& url, const std::string& sql);
  // First column of the first row; "" if there is no row (or the value is NULL).
  std::string QueryValue(const std::string& url, const std::string& sql);

  // For outage tests. Stop: fast shutdown; Kill: SIGKILL the postmaster; Start: start
  // again on the same port with the same data. Idempotent.
  void Stop();
  void Kill();
  void Start();
  bool running() const;

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  PgInstance(const PgInstance&) = delete;
  PgInstance& operator=(const PgInstance&) = delete;
  ~PgInstance();

 private:
  PgInstance();
  void Boot();
  std::string PgTmp(const std::string& command) const;  // runs scripts/pg-tmp, returns stdout
  void StartWatchdog();

  std::string dir_;
  std::string pg_tmp_;
  std::string migrations_dir_;
  int port_ = 0;
  bool running_ = false;
  int watchdog_fd_ = -1;  // write end of the pipe the watchdog waits on
  int64_t watchdog_pid_ = -1;
  uint64_t next_db_ = 0;
  mutable std::mutex mu_;
};

}  // namespace continuum::testing
