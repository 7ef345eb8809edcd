// The expand/contract discipline of db/migrations (src/db/README.md, "Schema changes two
// releases can share"). Pure functions: no database, no files.
//
// Every migration is an expand (additive: the release before it keeps working against
// the new schema) or a contract (removes or tightens what an older release still uses).
// A contract says so in its leading comment block with the line
//
//   -- continuum: contract
//
// (`-- continuum: expand` may be written; it is the default). A migration that is not
// marked contract and holds an obvious contract statement is refused, naming the line:
//   DROP TABLE / VIEW / MATERIALIZED VIEW / FUNCTION / PROCEDURE / TYPE / SCHEMA /
//        SEQUENCE / DOMAIN, DROP COLUMN (also `ALTER TABLE t DROP c`), DROP ATTRIBUTE;
//   any RENAME; SET NOT NULL; ALTER [COLUMN] c [SET DATA] TYPE; TRUNCATE;
//   ADD [COLUMN] c ... NOT NULL without DEFAULT (the older release's INSERTs fail).
// The scan skips comments, string literals and quoted identifiers; the text of
// dollar-quoted bodies is scanned (a DO block runs it), so a function body that only
// names such a statement counts too: mark the file contract or split it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace continuum::db {

enum class MigrationKind { kExpand, kContract };

struct MigrationHeader {
  MigrationKind kind = MigrationKind::kExpand;
  std::string error;  // e.g. an unknown `-- continuum: <word>`; empty when fine
};

// Reads `-- continuum: expand|contract` from the file's leading comment block.
MigrationHeader ParseMigrationHeader(std::string_view sql);

struct ContractStatement {
  int line = 0;      // 1-based
  std::string what;  // e.g. "DROP COLUMN", "SET NOT NULL"
};

// The contract statements in sql, in order.
std::vector<ContractStatement> FindContractStatements(std::string_view sql);

// Empty when file_name may be applied as declared; otherwise the reason, naming the file
// and every offending line.
std::string CheckMigration(std::string_view file_name, std::string_view sql);

}  // namespace continuum::db
