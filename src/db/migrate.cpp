// `continuum migrate`. A command-line tool, so blocking libpq is fine here.
//
// Rules:
//  - files are named NNNN_name.sql; they are applied in version order, each in its own
//    transaction, together with its row in schema_migrations (so a failed file leaves
//    nothing behind and is retried by the next run);
//  - lock_timeout is short (online-safe: a DDL that cannot get its lock fails fast
//    instead of queueing live traffic behind it); a lock timeout is retried a few times
//    with backoff before giving up; statement_timeout is generous (data migrations);
//  - the sha256 of every applied file is recorded; an applied file whose content has
//    changed is an error naming the file (never silently re-run or ignored);
//  - concurrent migrators (several nodes starting at once) serialize on a session
//    advisory lock; the second one finds everything applied and does nothing.
//  - a file whose first line is `-- migrate:no-transaction` runs outside a transaction
//    (for CREATE INDEX CONCURRENTLY); it must then hold exactly one statement, and is
//    recorded after it succeeds — write it idempotently (IF NOT EXISTS). It runs without
//    lock_timeout: a CONCURRENTLY operation queues no traffic behind its lock, and its
//    wait for older transactions must not fail halfway (an invalid index that IF NOT
//    EXISTS would then skip).
//  - expand/contract (migrate.hpp, db/migration_check.hpp): every file is checked before
//    anything runs; a contract migration runs only with `contract` and only when no
//    live node is older than it. The check runs inside the contract's own transaction
//    after LOCK TABLE continuum_node IN SHARE MODE, so a node cannot register between
//    the check and the commit (its INSERT waits for the contract's commit);
//  - it runs as the owner role, never as continuum_portal (refused): the owner owns
//    every table; 0013_roles.sql grants the portal role only what it needs.
#include "db/migrate.hpp"

#include <libpq-fe.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "db/migration_check.hpp"

namespace continuum::db {
namespace {

// An arbitrary constant shared by every migrator ("continuum" in ASCII, truncated).
constexpr long long kAdvisoryLockKey = 0x636f6e74696e75LL;
constexpr int kLockRetries = 5;
constexpr const char* kStatementTimeout = "30min";

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;
using Result = std::unique_ptr<PGresult, PgResultDeleter>;

class PgError : public std::runtime_error {
 public:
  PgError(const std::string& what, std::string sqlstate)
      : std::runtime_error(what), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

std::string Trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

Result Exec(PGconn* conn, const std::string& sql, const std::string& context) {
  Result r(PQexec(conn, sql.c_str()));
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    throw PgError(context + ": " + Trimmed(PQerrorMessage(conn)), state ? state : "");
  }
  return r;
}

Result ExecParams(PGconn* conn, const std::string& sql, const std::vector<std::string>& params,
                  const std::string& context) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  Result r(PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    throw PgError(context + ": " + Trimmed(PQerrorMessage(conn)), state ? state : "");
  }
  return r;
}

void ExecIgnoringErrors(PGconn* conn, const char* sql) { Result r(PQexec(conn, sql)); }

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

struct MigrationFile {
  int version = 0;
  std::string name;  // e.g. "0001_core"
  std::filesystem::path path;
  std::string sql;
  std::string checksum;
  bool transactional = true;
  bool contract = false;
};

std::vector<MigrationFile> LoadFiles(const std::vector<std::string>& dirs) {
  namespace fs = std::filesystem;
  static const std::regex kName(R"(^(\d{4})_([A-Za-z0-9_\-]+)\.sql$)");
  std::vector<MigrationFile> files;
  std::map<int, std::string> seen;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      throw std::runtime_error("migrate: migrations directory " + dir + " does not exist");
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      const std::string filename = entry.path().filename().string();
      std::smatch m;
      if (!std::regex_match(filename, m, kName)) {
        if (entry.path().extension() == ".sql") {
          throw std::runtime_error("migrate: " + filename + " is not named NNNN_name.sql");
        }
        continue;
      }
      MigrationFile f;
      f.version = std::stoi(m[1].str());
      f.name = entry.path().stem().string();
      f.path = entry.path();
      if (auto [it, inserted] = seen.emplace(f.version, filename); !inserted) {
        throw std::runtime_error("migrate: " + filename + " and " + it->second + " share version " +
                                 m[1].str());
      }
      std::ifstream in(f.path, std::ios::binary);
      if (!in) throw std::runtime_error("migrate: cannot read " + f.path.string());
      std::ostringstream buf;
      buf << in.rdbuf();
      f.sql = buf.str();
      f.checksum = Sha256Hex(f.sql);
      f.transactional = f.sql.rfind("-- migrate:no-transaction", 0) != 0;
      if (std::string err = CheckMigration(filename, f.sql); !err.empty()) {
        throw std::runtime_error("migrate: " + err);
      }
      f.contract = ParseMigrationHeader(f.sql).kind == MigrationKind::kContract;
      files.push_back(std::move(f));
    }
  }
  std::sort(files.begin(), files.end(),
            [](const MigrationFile& a, const MigrationFile& b) { return a.version < b.version; });
  return files;
}

std::vector<std::string> Dirs(const MigrateOptions& options) {
  std::vector<std::string> dirs = {options.migrations_dir.empty() ? "db/migrations"
                                                                  : options.migrations_dir};
  dirs.insert(dirs.end(), options.extra_dirs.begin(), options.extra_dirs.end());
  return dirs;
}

// A contract migration may run only when every live node was built knowing it (its
// schema_version is at least the contract's version): those nodes' code does not use
// what the contract removes. Throws naming the nodes that are older.
void RequireNoOlderNodes(PGconn* conn, const MigrationFile& f, int stale_s) {
  const std::string context = "migrate: " + f.path.filename().string();
  Result exists = Exec(conn, "SELECT to_regclass('continuum_node') IS NOT NULL", context);
  if (std::string_view(PQgetvalue(exists.get(), 0, 0)) != "t") return;  // no node registry yet
  Result r = ExecParams(
      conn,
      "SELECT node_id, region, version, schema_version, "
      "round(extract(epoch FROM now() - heartbeat_at))::bigint FROM continuum_node "
      "WHERE heartbeat_at > now() - make_interval(secs => $1::int) AND schema_version < $2::int "
      "ORDER BY node_id, instance_id",
      {std::to_string(stale_s), std::to_string(f.version)}, context);
  if (PQntuples(r.get()) == 0) return;
  std::string nodes;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    nodes += std::string(i ? "; " : "") + PQgetvalue(r.get(), i, 0) + " (region " +
             PQgetvalue(r.get(), i, 1) + ", version " + PQgetvalue(r.get(), i, 2) + ", schema " +
             PQgetvalue(r.get(), i, 3) + ", last seen " + PQgetvalue(r.get(), i, 4) + " s ago)";
  }
  throw std::runtime_error(
      context + " is a contract migration and " + std::to_string(PQntuples(r.get())) +
      " live node(s) run a release built before it: " + nodes +
      ". Upgrade or stop them first (a stopped node deregisters; one that died counts as gone " +
      std::to_string(stale_s) +
      " s after its last heartbeat), then run `continuum migrate "
      "--contract` again");
}

void ApplyOne(PGconn* conn, const MigrationFile& f, int lock_timeout_ms, int stale_s) {
  const std::string record_sql =
      "INSERT INTO schema_migrations (version, name, checksum, applied_at, kind) "
      "VALUES ($1, $2, $3, now(), $4)";
  const std::vector<std::string> record_params = {std::to_string(f.version), f.name, f.checksum,
                                                  f.contract ? "contract" : "expand"};
  const std::string context = "migrate: " + f.path.filename().string();
  if (!f.transactional) {
    // No lock_timeout here. A no-transaction file is a CONCURRENTLY operation: it takes a
    // lock that queues no reads or writes behind it, then waits for every transaction older
    // than it. A lock_timeout would fail that wait (55P03) and leave an invalid index, which
    // the retry's IF NOT EXISTS would then skip and record as applied.
    if (f.contract) RequireNoOlderNodes(conn, f, stale_s);
    Exec(conn, "SET lock_timeout = 0", context);
    Exec(conn, std::string("SET statement_timeout = '") + kStatementTimeout + "'", context);
    try {
      Exec(conn, f.sql, context);
    } catch (...) {
      ExecIgnoringErrors(conn, "RESET lock_timeout; RESET statement_timeout");
      throw;
    }
    Exec(conn, "RESET lock_timeout; RESET statement_timeout", context);
    ExecParams(conn, record_sql, record_params, context);
    return;
  }
  Exec(conn, "BEGIN", context);
  try {
    Exec(conn, "SET LOCAL lock_timeout = '" + std::to_string(lock_timeout_ms) + "ms'", context);
    Exec(conn, std::string("SET LOCAL statement_timeout = '") + kStatementTimeout + "'", context);
    if (f.contract) {
      // Held to the commit: a node registering now waits, and is checked by the next run.
      Exec(conn,
           "DO $$ BEGIN IF to_regclass('continuum_node') IS NOT NULL THEN "
           "LOCK TABLE continuum_node IN SHARE MODE; END IF; END $$",
           context);
      RequireNoOlderNodes(conn, f, stale_s);
    }
    Exec(conn, f.sql, context);
    ExecParams(conn, record_sql, record_params, context);
    Exec(conn, "COMMIT", context);
  } catch (...) {
    ExecIgnoringErrors(conn, "ROLLBACK");
    throw;
  }
}

}  // namespace

std::vector<MigrationInfo> CheckMigrationFiles(const MigrateOptions& options) {
  if (sodium_init() < 0) throw std::runtime_error("migrate: libsodium failed to initialize");
  std::vector<MigrationInfo> out;
  for (const auto& f : LoadFiles(Dirs(options)))
    out.push_back({f.path.filename().string(), f.contract});
  return out;
}

int Migrate(const MigrateOptions& options) {
  if (sodium_init() < 0) throw std::runtime_error("migrate: libsodium failed to initialize");
  const std::vector<MigrationFile> files = LoadFiles(Dirs(options));

  Conn conn(PQconnectdb(options.database_url.reveal().c_str()));
  if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
    // The message of a failed connection names host and port, never the password.
    throw std::runtime_error("migrate: cannot connect to the database: " +
                             Trimmed(conn ? PQerrorMessage(conn.get()) : "out of memory"));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  Exec(conn.get(), "SET application_name = 'continuum-migrate'", "migrate");
  // Migrations run as the owner role; the portal's role may not own or alter anything
  // (src/audit/README.md, "Database roles"). Say so plainly instead of failing on the
  // first CREATE with "permission denied".
  {
    Result who = Exec(conn.get(), "SELECT current_user", "migrate");
    if (std::string_view(PQgetvalue(who.get(), 0, 0)) == "continuum_portal") {
      throw std::runtime_error(
          "migrate: connected as continuum_portal, the portal's role; run migrations as the "
          "database owner role (e.g. CONTINUUM_OWNER_DATABASE_URL or --database-url)");
    }
  }

  // Serialize concurrent migrators. Session-level: held across the per-file
  // transactions, released when the connection closes (also on a crash).
  // Polled with pg_try_advisory_lock rather than waited for: a session blocked inside
  // pg_advisory_lock holds a snapshot, and CREATE INDEX CONCURRENTLY in the lock
  // holder waits for every such snapshot, a cycle that ends in a deadlock error.
  for (int attempt = 0;; ++attempt) {
    Result r =
        Exec(conn.get(), "SELECT pg_try_advisory_lock(" + std::to_string(kAdvisoryLockKey) + ")",
             "migrate: advisory lock");
    if (std::string_view(PQgetvalue(r.get(), 0, 0)) == "t") break;
    if (attempt == 0) std::fprintf(stderr, "migrate: waiting for another migrator\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  Exec(conn.get(),
       "CREATE TABLE IF NOT EXISTS schema_migrations ("
       "  version     integer PRIMARY KEY,"
       "  name        text NOT NULL,"
       "  checksum    text NOT NULL,"
       "  applied_at  timestamptz NOT NULL DEFAULT now())",
       "migrate: schema_migrations");
  // Each migration's kind: a node built before an applied contract reads it and refuses
  // to become ready (src/portal/node.cpp, NodeRegistry).
  Exec(conn.get(),
       "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT "
       "'expand'",
       "migrate: schema_migrations");

  std::map<int, std::pair<std::string, std::string>> applied;  // version -> (name, checksum)
  {
    Result r = Exec(conn.get(), "SELECT version, name, checksum FROM schema_migrations",
                    "migrate: schema_migrations");
    for (int i = 0; i < PQntuples(r.get()); ++i) {
      applied[std::stoi(PQgetvalue(r.get(), i, 0))] = {PQgetvalue(r.get(), i, 1),
                                                       PQgetvalue(r.get(), i, 2)};
    }
  }

  // Verify every applied file first: a tampered history stops everything, before any
  // new file runs.
  for (const auto& f : files) {
    auto it = applied.find(f.version);
    if (it != applied.end() && it->second.second != f.checksum) {
      throw std::runtime_error("migrate: " + f.path.filename().string() +
                               " has changed since it was applied (checksum " +
                               it->second.second.substr(0, 12) + "... recorded, " +
                               f.checksum.substr(0, 12) +
                               "... now); write a new migration instead of editing it");
    }
  }

  int count = 0;
  for (const auto& f : files) {
    if (applied.count(f.version)) continue;
    if (f.contract && !options.contract) {
      int pending = 0;
      for (const auto& g : files) pending += !applied.count(g.version) && g.version >= f.version;
      std::fprintf(stderr,
                   "migrate: %s is a contract migration: not applied, nor the %d after it. Run "
                   "`continuum migrate --contract` once every node runs a release built with it "
                   "(it refuses while an older node is live)\n",
                   f.name.c_str(), pending - 1);
      break;
    }
    const auto start = std::chrono::steady_clock::now();
    for (int attempt = 1;; ++attempt) {
      try {
        ApplyOne(conn.get(), f, options.lock_timeout_ms, options.node_stale_s);
        break;
      } catch (const PgError& e) {
        // 55P03 lock_not_available: live traffic holds a conflicting lock. Back off and
        // retry rather than queue behind it.
        if (e.sqlstate() != "55P03" || attempt >= kLockRetries) {
          throw std::runtime_error(e.what());
        }
        std::fprintf(stderr, "migrate: %s could not get its lock (attempt %d/%d), retrying\n",
                     f.name.c_str(), attempt, kLockRetries);
        std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
      }
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    std::fprintf(stderr, "migrate: applied %s (%lld ms)\n", f.name.c_str(),
                 static_cast<long long>(ms));
    ++count;
  }

  Exec(conn.get(), "SELECT pg_advisory_unlock(" + std::to_string(kAdvisoryLockKey) + ")",
       "migrate: advisory unlock");
  return count;
}

}  // namespace continuum::db
