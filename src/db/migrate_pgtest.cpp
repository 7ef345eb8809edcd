#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/release.hpp"
#include "db/migrate.hpp"
#include "support/pg_instance.hpp"

namespace continuum::db {
namespace {

namespace fs = std::filesystem;
using continuum::testing::PgInstance;

const std::string kSourceMigrations = std::string(continuum::SourceDir()) + "/db/migrations";

int CountSqlFiles(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.path().extension() == ".sql";
  return n;
}

class MigrateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = &PgInstance::Shared();
    // An empty database (not the migrated template).
    static int counter = 0;
    const std::string name =
        "migrate_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    pg_->Exec(pg_->UrlFor("postgres"), "CREATE DATABASE " + name + " TEMPLATE template0");
    url_ = pg_->UrlFor(name);
    char tmpl[] = "/tmp/continuum-migrations-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void CopySource(const std::string& filename) {
    fs::copy_file(kSourceMigrations + "/" + filename, dir_ + "/" + filename);
  }
  void CopyAllSource() {
    for (const auto& e : fs::directory_iterator(kSourceMigrations)) {
      if (e.path().extension() == ".sql") CopySource(e.path().filename().string());
    }
  }
  void Write(const std::string& filename, const std::string& content) {
    std::ofstream(dir_ + "/" + filename, std::ios::binary | std::ios::trunc) << content;
  }
  MigrateOptions Options(int lock_timeout_ms = 2000) const {
    MigrateOptions o;
    o.database_url = Secret(url_);
    o.migrations_dir = dir_;
    o.lock_timeout_ms = lock_timeout_ms;
    return o;
  }
  std::string Q(const std::string& sql) { return pg_->QueryValue(url_, sql); }

  PgInstance* pg_ = nullptr;
  std::string url_;
  std::string dir_;
};

TEST_F(MigrateTest, AppliesAllInOrderAndIsIdempotent) {
  CopyAllSource();
  const int files = CountSqlFiles(dir_);
  ASSERT_GE(files, 2);
  EXPECT_EQ(Migrate(Options()), files);
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations"), std::to_string(files));
  EXPECT_EQ(Q("SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations "
              "WHERE version <= 2"),
            "1,2");
  EXPECT_EQ(Q("SELECT name FROM schema_migrations WHERE version = 1"), "0001_core");
  EXPECT_EQ(Q("SELECT length(checksum) FROM schema_migrations WHERE version = 1"), "64");
  EXPECT_EQ(Q("SELECT to_regclass('public.patient') IS NOT NULL"), "t");
  EXPECT_EQ(Q("SELECT to_regclass('public.audit_event') IS NOT NULL"), "t");
  // Second run: nothing to do, nothing changes.
  const std::string before =
      Q("SELECT string_agg(version || checksum || applied_at, ',' "
        "ORDER BY version) FROM schema_migrations");
  EXPECT_EQ(Migrate(Options()), 0);
  EXPECT_EQ(Q("SELECT string_agg(version || checksum || applied_at, ',' ORDER BY version) "
              "FROM schema_migrations"),
            before);
}

TEST_F(MigrateTest, AppliesOnlyNewFiles) {
  CopySource("0001_core.sql");
  EXPECT_EQ(Migrate(Options()), 1);
  CopySource("0002_audit.sql");
  Write("0900_extra.sql", "CREATE INDEX facility_state_idx ON facility (state);\n");
  EXPECT_EQ(Migrate(Options()), 2);
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations"), "3");
  EXPECT_EQ(Q("SELECT to_regclass('public.facility_state_idx') IS NOT NULL"), "t");
}

TEST_F(MigrateTest, ChangedChecksumOfAppliedFileIsRejectedNamingIt) {
  CopyAllSource();
  Migrate(Options());
  { std::ofstream(dir_ + "/0002_audit.sql", std::ios::app) << "\n-- edited after the fact\n"; }
  Write("0900_next.sql", "CREATE TABLE should_not_exist (id int);\n");
  try {
    Migrate(Options());
    FAIL() << "a changed applied migration must be rejected";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0002_audit.sql"), std::string::npos) << e.what();
  }
  // Nothing after the tampered file ran.
  EXPECT_EQ(Q("SELECT to_regclass('public.should_not_exist') IS NULL"), "t");
}

TEST_F(MigrateTest, FailedFileRollsBackCompletelyAndIsNamed) {
  CopyAllSource();
  const int files = CountSqlFiles(dir_);
  Write("0900_bad.sql", "CREATE TABLE half_done (id int);\nSELECT 1/0;\n");
  try {
    Migrate(Options());
    FAIL() << "a failing migration must throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0900_bad.sql"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Q("SELECT to_regclass('public.half_done') IS NULL"), "t");
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations WHERE version = 900"), "0");
  // The earlier files stay applied; fixing the file lets the next run finish.
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations"), std::to_string(files));
  Write("0900_bad.sql", "CREATE TABLE half_done (id int);\n");
  EXPECT_EQ(Migrate(Options()), 1);
}

TEST_F(MigrateTest, RejectsBadFileNamesAndDuplicateVersions) {
  CopyAllSource();
  Write("3_oops.sql", "SELECT 1;\n");
  EXPECT_THROW(Migrate(Options()), std::runtime_error);
  fs::remove(dir_ + "/3_oops.sql");
  Write("0002_again.sql", "SELECT 1;\n");
  EXPECT_THROW(Migrate(Options()), std::runtime_error);
}

TEST_F(MigrateTest, ConcurrentMigratorsSerialize) {
  CopyAllSource();
  const int files = CountSqlFiles(dir_);
  std::atomic<int> applied{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      try {
        applied += Migrate(Options());
      } catch (const std::exception& e) {
        ++failures;
        ADD_FAILURE() << e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(applied.load(), files);
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations"), std::to_string(files));
}

TEST_F(MigrateTest, LockTimeoutIsRetriedThenSucceeds) {
  CopyAllSource();
  Migrate(Options());
  Write("0900_alter.sql", "ALTER TABLE facility ADD COLUMN phone text;\n");
  // Live traffic holds a lock on facility for a moment.
  PGconn* holder = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  PQclear(PQexec(holder, "BEGIN; LOCK TABLE facility IN ACCESS SHARE MODE"));
  std::thread release([holder] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    PQclear(PQexec(holder, "COMMIT"));
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Migrate(Options(/*lock_timeout_ms=*/100)), 1);
  release.join();
  PQfinish(holder);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(400));
  EXPECT_EQ(Q("SELECT count(*) FROM information_schema.columns WHERE table_name = 'facility' "
              "AND column_name = 'phone'"),
            "1");
}

TEST_F(MigrateTest, LockTimeoutGivesUpNamingTheFile) {
  CopyAllSource();
  Migrate(Options());
  Write("0900_alter.sql", "ALTER TABLE facility ADD COLUMN phone text;\n");
  PGconn* holder = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  PQclear(PQexec(holder, "BEGIN; LOCK TABLE facility IN ACCESS SHARE MODE"));
  try {
    Migrate(Options(/*lock_timeout_ms=*/50));
    ADD_FAILURE() << "expected a lock timeout";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("0900_alter.sql"), std::string::npos) << e.what();
  }
  PQclear(PQexec(holder, "ROLLBACK"));
  PQfinish(holder);
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations WHERE version = 900"), "0");
}

TEST_F(MigrateTest, NoTransactionFileForConcurrentIndex) {
  CopyAllSource();
  Write("0900_idx.sql",
        "-- migrate:no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS patient_mrn_lower_idx ON patient (lower(mrn));\n");
  EXPECT_EQ(Migrate(Options()), CountSqlFiles(dir_));
  EXPECT_EQ(Q("SELECT to_regclass('public.patient_mrn_lower_idx') IS NOT NULL"), "t");
}

// 0025-0027: audit_event's patient and actor look-ups move from btrees to GIN indexes, and
// the btrees go only once both GIN indexes are valid (a failed CREATE INDEX CONCURRENTLY
// leaves an invalid one, which IF NOT EXISTS would then skip).
TEST_F(MigrateTest, AuditLookupsMoveToGinIndexesOnlyOnceTheyAreValid) {
  for (const auto& e : fs::directory_iterator(kSourceMigrations)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".sql" && name < "0027") CopySource(name);
  }
  Migrate(Options());
  const std::string methods =
      "SELECT string_agg(c.relname || ':' || am.amname || ':' || i.indisvalid, ',' "
      "ORDER BY c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
      "JOIN pg_am am ON am.oid = c.relam WHERE i.indrelid = 'audit_event'::regclass "
      "AND c.relname IN ('audit_event_patient_idx', 'audit_event_actor_idx', "
      "'audit_event_patient_gin', 'audit_event_actor_gin')";
  EXPECT_EQ(Q(methods),
            "audit_event_actor_gin:gin:true,audit_event_actor_idx:btree:true,"
            "audit_event_patient_gin:gin:true,audit_event_patient_idx:btree:true");

  // What a cancelled concurrent build leaves: the index, marked invalid.
  pg_->Exec(url_,
            "UPDATE pg_index SET indisvalid = false "
            "WHERE indexrelid = 'audit_event_actor_gin'::regclass");
  CopySource("0027_audit_drop_lookup_btrees.sql");
  try {
    Migrate(Options());
    ADD_FAILURE() << "0027 dropped the btrees while a GIN index was invalid";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("0027_audit_drop_lookup_btrees.sql"), std::string::npos) << what;
    EXPECT_NE(what.find("audit_event_actor_gin missing or not valid"), std::string::npos) << what;
  }
  EXPECT_EQ(Q("SELECT count(*) FROM schema_migrations WHERE version = 27"), "0");
  EXPECT_EQ(Q("SELECT to_regclass('public.audit_event_actor_idx') IS NOT NULL"), "t");

  // The remedy the message names, then the same migration goes through.
  pg_->Exec(url_, "REINDEX INDEX CONCURRENTLY audit_event_actor_gin");
  EXPECT_EQ(Migrate(Options()), 1);
  EXPECT_EQ(Q(methods), "audit_event_actor_gin:gin:true,audit_event_patient_gin:gin:true");

  // The AuditEvent look-ups' conditions (portal/audit_api.cpp) can use them (btree_gin's
  // text equality; an empty table would otherwise be scanned).
  for (const auto& [where, index] :
       {std::pair{"patient_id = 'pat-1'", "audit_event_patient_gin"},
        std::pair{"actor = 'demo-provider'", "audit_event_actor_gin"}}) {
    const std::string plan =
        Q(std::string(
              "SET enable_seqscan = off; EXPLAIN (COSTS OFF, FORMAT JSON) SELECT node_id, seq, "
              "count(*) OVER () FROM audit_event WHERE ") +
          where + " ORDER BY recorded_at DESC, node_id, seq DESC LIMIT 50");
    EXPECT_NE(plan.find(index), std::string::npos) << plan;
  }
}

// A concurrent index build waits for the transactions older than it (an AuditEvent read,
// `audit verify`) however long the migration's lock_timeout: failing there would leave an
// invalid index that the retry's IF NOT EXISTS skips.
TEST_F(MigrateTest, AConcurrentIndexWaitsForOlderTransactionsPastTheLockTimeout) {
  CopyAllSource();
  Migrate(Options());
  Write("0900_idx.sql",
        "-- migrate:no-transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS facility_name_lower_idx ON facility "
        "(lower(name));\n");
  PGconn* holder = PQconnectdb(url_.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK);
  // A write in progress on the table (the build waits for it before it starts), and a
  // snapshot (the build waits for it before the index is marked valid).
  PQclear(PQexec(holder,
                 "BEGIN ISOLATION LEVEL REPEATABLE READ; "
                 "UPDATE facility SET name = name WHERE id = -1; SELECT count(*) FROM patient"));
  std::thread release([holder] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    PQclear(PQexec(holder, "COMMIT"));
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Migrate(Options(/*lock_timeout_ms=*/100)), 1);
  const auto waited = std::chrono::steady_clock::now() - start;
  release.join();
  PQfinish(holder);
  EXPECT_GE(waited, std::chrono::milliseconds(1400));
  EXPECT_EQ(Q("SELECT i.indisvalid FROM pg_index i "
              "WHERE i.indexrelid = 'facility_name_lower_idx'::regclass"),
            "t");
}

TEST_F(MigrateTest, UnreachableDatabaseIsAClearError) {
  CopyAllSource();
  MigrateOptions o = Options();
  o.database_url = Secret("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2");
  EXPECT_THROW(Migrate(o), std::runtime_error);
}

TEST(PgInstanceTest, FreshDatabasesAreMigratedAndIsolated) {
  auto& pg = PgInstance::Shared();
  EXPECT_EQ(pg.QueryValue(pg.url(), "SELECT count(*) FROM schema_migrations"),
            std::to_string(CountSqlFiles(kSourceMigrations)));
  const std::string a = pg.FreshDatabase();
  const std::string b = pg.FreshDatabase();
  ASSERT_NE(a, b);
  pg.Exec(a, "INSERT INTO facility (id, name, city, state) VALUES (1, 'A', 'X', 'CA')");
  EXPECT_EQ(pg.QueryValue(a, "SELECT count(*) FROM facility"), "1");
  EXPECT_EQ(pg.QueryValue(b, "SELECT count(*) FROM facility"), "0");
  EXPECT_EQ(pg.QueryValue(b, "SELECT name FROM facility WHERE id = 1"), "");
  EXPECT_THROW(pg.Exec(a, "SELECT * FROM no_such_table"), std::runtime_error);
}

TEST(PgInstanceTest, StopKillStartKeepData) {
  auto& pg = PgInstance::Shared();
  const std::string db = pg.FreshDatabase();
  pg.Exec(db, "INSERT INTO facility (id, name, city, state) VALUES (7, 'B', 'Y', 'NY')");
  const int port = pg.port();
  pg.Stop();
  EXPECT_THROW(pg.QueryValue(db, "SELECT 1"), std::runtime_error);
  pg.Start();
  EXPECT_EQ(pg.port(), port);
  EXPECT_EQ(pg.QueryValue(db, "SELECT name FROM facility WHERE id = 7"), "B");
  pg.Kill();
  EXPECT_THROW(pg.QueryValue(db, "SELECT 1"), std::runtime_error);
  pg.Start();  // crash recovery
  EXPECT_EQ(pg.QueryValue(db, "SELECT name FROM facility WHERE id = 7"), "B");
}

}  // namespace
}  // namespace continuum::db
