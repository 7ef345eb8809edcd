#include "db/migration_check.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/release.hpp"

namespace continuum::db {
namespace {

std::vector<std::string> Found(std::string_view sql) {
  std::vector<std::string> out;
  for (const auto& f : FindContractStatements(sql)) out.push_back(f.what);
  return out;
}

using V = std::vector<std::string>;

TEST(MigrationCheck, ExpandStatementsPass) {
  EXPECT_EQ(Found("CREATE TABLE t (id bigint PRIMARY KEY, a text NOT NULL);"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ADD COLUMN b text;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ADD COLUMN IF NOT EXISTS b text;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ADD COLUMN s boolean NOT NULL DEFAULT false;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ADD COLUMN c int CHECK (c IS NOT NULL OR true);"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ADD CONSTRAINT k CHECK (a IS NOT NULL) NOT VALID;"), V{});
  EXPECT_EQ(Found("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"), V{});
  EXPECT_EQ(Found("ALTER TABLE job DROP CONSTRAINT job_kind_check;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ALTER COLUMN a DROP NOT NULL;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ALTER COLUMN a DROP DEFAULT;"), V{});
  EXPECT_EQ(Found("ALTER TABLE t ALTER COLUMN a SET DEFAULT 0;"), V{});
  EXPECT_EQ(Found("ALTER SEQUENCE s RESTART WITH 10;"), V{});
  EXPECT_EQ(Found("DROP INDEX CONCURRENTLY IF EXISTS i;"), V{});
  EXPECT_EQ(Found("CREATE TRIGGER g BEFORE UPDATE OR DELETE OR TRUNCATE ON t FOR EACH "
                  "STATEMENT EXECUTE FUNCTION f();"),
            V{});
  EXPECT_EQ(Found("REVOKE UPDATE, DELETE, TRUNCATE ON t FROM r;"), V{});
  EXPECT_EQ(Found("SELECT $1::text; UPDATE t SET a = $2;"), V{});
}

TEST(MigrationCheck, ContractStatementsAreFoundWithTheirLine) {
  auto f = FindContractStatements("CREATE TABLE x (a int);\n\nDROP TABLE old;\n");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].line, 3);
  EXPECT_EQ(f[0].what, "DROP TABLE");
  EXPECT_EQ(Found("ALTER TABLE t DROP COLUMN a;"), V{"DROP COLUMN"});
  EXPECT_EQ(Found("ALTER TABLE t DROP a;"), V{"DROP COLUMN"});
  EXPECT_EQ(Found("ALTER TABLE IF EXISTS ONLY t DROP IF EXISTS a CASCADE;"), V{"DROP COLUMN"});
  EXPECT_EQ(Found("alter table t rename column a to b;"), V{"RENAME"});
  EXPECT_EQ(Found("ALTER TABLE t RENAME TO u;"), V{"RENAME"});
  EXPECT_EQ(Found("ALTER TABLE t ALTER COLUMN a SET NOT NULL;"), V{"SET NOT NULL"});
  EXPECT_EQ(Found("ALTER TABLE t ALTER COLUMN a TYPE bigint;"), V{"ALTER COLUMN ... TYPE"});
  EXPECT_EQ(Found("ALTER TABLE t ALTER a SET DATA TYPE bigint;"), V{"ALTER COLUMN ... TYPE"});
  EXPECT_EQ(Found("TRUNCATE t;"), V{"TRUNCATE"});
  EXPECT_EQ(Found("DROP VIEW v; DROP MATERIALIZED VIEW m; DROP FUNCTION f(); DROP TYPE e;"),
            (V{"DROP VIEW", "DROP MATERIALIZED VIEW", "DROP FUNCTION", "DROP TYPE"}));
  EXPECT_EQ(Found("ALTER TABLE t ADD COLUMN b text NOT NULL;"),
            V{"ADD COLUMN ... NOT NULL without DEFAULT"});
  EXPECT_EQ(Found("ALTER TABLE t ADD c int, ADD d int NOT NULL, ADE;"),
            V{"ADD COLUMN ... NOT NULL without DEFAULT"});
}

TEST(MigrationCheck, CommentsStringsAndQuotedNamesAreNotStatements) {
  EXPECT_EQ(Found("-- DROP TABLE t;\n/* RENAME /* nested */ DROP TABLE */ SELECT 1;"), V{});
  EXPECT_EQ(Found("INSERT INTO t VALUES ('DROP TABLE x; it''s', E'\\' RENAME');"), V{});
  EXPECT_EQ(Found("CREATE TABLE \"rename\" (\"drop table\" int);"), V{});
}

TEST(MigrationCheck, DollarQuotedBodiesAreScanned) {
  // A DO block runs what it holds.
  EXPECT_EQ(Found("DO $$ BEGIN DROP TABLE t; END $$;"), V{"DROP TABLE"});
  EXPECT_EQ(Found("DO $x$ BEGIN IF true THEN TRUNCATE t; END IF; END $x$;"), V{"TRUNCATE"});
  EXPECT_EQ(Found("DO $$ BEGIN RAISE NOTICE 'drop table'; END $$;"), V{});
}

TEST(MigrationCheck, HeaderDeclaresTheKind) {
  EXPECT_EQ(ParseMigrationHeader("CREATE TABLE t (a int);").kind, MigrationKind::kExpand);
  EXPECT_EQ(ParseMigrationHeader("-- x\n-- continuum: contract\nDROP TABLE t;").kind,
            MigrationKind::kContract);
  EXPECT_EQ(ParseMigrationHeader("-- migrate:no-transaction\n--continuum: contract\n").kind,
            MigrationKind::kContract);
  EXPECT_EQ(ParseMigrationHeader("-- continuum: expand\n").kind, MigrationKind::kExpand);
  // Only the leading comment block counts.
  EXPECT_EQ(ParseMigrationHeader("SELECT 1;\n-- continuum: contract\n").kind,
            MigrationKind::kExpand);
  EXPECT_NE(ParseMigrationHeader("-- continuum: contrat\n").error.find("contrat"),
            std::string::npos);
}

TEST(MigrationCheck, UnmarkedContractIsRefusedNamingFileAndLines) {
  std::string err = CheckMigration("0020_x.sql", "-- drop it\nALTER TABLE t\n  DROP COLUMN a;\n");
  EXPECT_NE(err.find("0020_x.sql"), std::string::npos) << err;
  EXPECT_NE(err.find("line 3: DROP COLUMN"), std::string::npos) << err;
  EXPECT_NE(err.find("-- continuum: contract"), std::string::npos) << err;
  EXPECT_EQ(CheckMigration("0020_x.sql", "-- continuum: contract\nALTER TABLE t DROP COLUMN a;"),
            "");
  EXPECT_EQ(CheckMigration("0020_x.sql", "ALTER TABLE t ADD COLUMN a text;"), "");
  EXPECT_NE(CheckMigration("0020_x.sql", "-- continuum: maybe\nSELECT 1;"), "");
}

// Every migration in the tree passes the checker as declared, and those of db/migrations
// up to 0018 (written before the discipline) are all expands: none needed grandfathering.
TEST(MigrationCheck, TheTreesMigrationsPass) {
  namespace fs = std::filesystem;
  int files = 0;
  for (const char* sub : {"/db/migrations", "/db/migrations-next"}) {
    const fs::path dir = std::string(continuum::SourceDir()) + sub;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".sql") continue;
      std::ifstream in(e.path());
      std::stringstream buf;
      buf << in.rdbuf();
      const std::string name = e.path().filename().string();
      EXPECT_EQ(CheckMigration(name, buf.str()), "") << name;
      if (std::stoi(name.substr(0, 4)) <= 18) {
        EXPECT_EQ(ParseMigrationHeader(buf.str()).kind, MigrationKind::kExpand) << name;
        EXPECT_TRUE(FindContractStatements(buf.str()).empty()) << name;
      }
      ++files;
    }
  }
  EXPECT_GE(files, 18);
}

}  // namespace
}  // namespace continuum::db
