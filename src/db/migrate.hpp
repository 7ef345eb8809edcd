// `continuum migrate`: applies versioned SQL files from db/migrations/ in order, each in
// its own transaction with a short lock_timeout (online-safe: a migration that cannot
// get its lock fails fast instead of queueing behind live traffic), recording each in
// schema_migrations. Already applied versions are skipped; a changed file is an error.
//
// Expand/contract (src/db/README.md, "Schema changes two releases can share"): every file
// passes CheckMigration (db/migration_check.hpp) before anything runs. Expands are
// applied in order; the first pending contract stops the run (reported on stderr, not an
// error) unless `contract` is set, and then it runs only when no live node (a row of
// continuum_node seen within node_stale_s) was built for a lower schema version than the
// contract's own: otherwise it throws, naming those nodes.
#pragma once

#include <string>
#include <vector>

#include "core/secret.hpp"

namespace continuum::db {

struct MigrateOptions {
  Secret database_url;
  std::string migrations_dir;
  // More folders of migrations (the test release's db/migrations-next); versions are
  // unique across all folders.
  std::vector<std::string> extra_dirs;
  int lock_timeout_ms = 2000;
  bool contract = false;  // `--contract`: contract migrations may run
  int node_stale_s = 30;  // a node whose heartbeat is older counts as gone
};

struct MigrationInfo {
  std::string file;  // e.g. "0019_node_registry.sql"
  bool contract = false;
};

// Reads and checks every file (names, versions, the expand/contract discipline) without
// a database. Throws std::runtime_error naming the first bad file.
std::vector<MigrationInfo> CheckMigrationFiles(const MigrateOptions& options);

// Returns the number of migrations applied. Throws std::runtime_error naming the file.
int Migrate(const MigrateOptions& options);

}  // namespace continuum::db
