// `continuum audit verify`: checks every journal chain under a folder and the
// audit_event table against them, and names each problem found.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/secret.hpp"

namespace continuum::audit {

struct VerifyReport {
  uint64_t journal_records = 0;
  uint64_t table_rows = 0;
  std::vector<std::string> problems;  // e.g. "journal node-1 seq 42: hash mismatch (modified)"
  // Not problems, worth showing: e.g. "journal node-1 seq 43..50: not yet shipped".
  std::vector<std::string> notes;
  uint64_t not_yet_shipped = 0;  // journal records past the shipped position, not in the table
  bool ok() const { return problems.empty(); }
};

// database_url may be empty to check only the journals. journal_dirs may hold several
// nodes' journal folders. trusted_keys_file: "<node_id> <hex Ed25519 public key>" lines
// (empty: each node's first stored key is trusted).
VerifyReport Verify(const std::vector<std::string>& journal_dirs, const Secret& database_url,
                    const std::string& trusted_keys_file = "");

}  // namespace continuum::audit
