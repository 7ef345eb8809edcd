// `continuum migrate`: applies versioned SQL files from db/migrations/ in order, each in
// its own transaction with a short lock_timeout (online-safe: a migration that cannot
// get its lock fails fast instead of queueing behind live traffic), recording each in
// schema_migrations. Already applied versions are skipped; a changed file is an error.
#pragma once

#include <string>

#include "core/secret.hpp"

namespace continuum::db {

struct MigrateOptions {
  Secret database_url;
  std::string migrations_dir;
  int lock_timeout_ms = 2000;
};

// Returns the number of migrations applied. Throws std::runtime_error naming the file.
int Migrate(const MigrateOptions& options);

}  // namespace continuum::db
