// The journal line format, shared by the journal (writes it), the shipper (reads it)
// and verify (checks it).
//
// A line is one JSON object, serialized by Boost.JSON (compact, no whitespace) with the
// keys in exactly this order:
//   seq, recorded_at, region, node_id, request_id, actor, role, action, resource_type,
//   resource_id, patient_id, client_address, purpose_of_use, outcome, detail,
//   prev_hash, hash
// `seq` is an integer (1, 2, ...), every other field a string. `hash` is the lower-case
// hex SHA-256 of the canonical serialization of the same object without `hash` (so it
// covers prev_hash too). `prev_hash` is the previous record's `hash`; the first record
// of a node links to GenesisHash(node_id) = hex SHA-256 of "genesis:<node_id>", so a
// journal cannot be silently replaced by one that starts from another node's chain.
// Strings are valid UTF-8 without NUL (the journal replaces anything else with U+FFFD),
// which keeps every line parseable and storable in a PostgreSQL text column.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "audit/record.hpp"

namespace continuum::audit::internal {

// clang-format off
inline constexpr std::array<std::string_view, 17> kLineKeys = {
    "seq", "recorded_at", "region", "node_id", "request_id", "actor", "role", "action",
    "resource_type", "resource_id", "patient_id", "client_address", "purpose_of_use",
    "outcome", "detail", "prev_hash", "hash"};
// clang-format on

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Raw SHA-256 of `data`.
std::array<unsigned char, 32> Sha256(std::string_view data);
// The prev_hash of a node's first record.
std::string GenesisHash(std::string_view node_id);

// The canonical JSON of `r` with prev_hash and, if `hash` is given, hash. No newline.
std::string SerializeLine(const Record& r, std::string_view prev_hash, const std::string* hash);
// The same through a Boost.JSON document (boost::json::serialize): the reference
// SerializeLine is held to (unit test, fuzz_audit_line, bench/audit_line).
std::string SerializeLineDom(const Record& r, std::string_view prev_hash, const std::string* hash);

struct ParsedLine {
  Record record;
  std::string prev_hash;
  std::string hash;
  long long recorded_at_micros = 0;  // record.recorded_at, microseconds since the epoch
  // True only if the line is exactly SerializeLine's output for these fields (read by the
  // direct reader, every escape as the writer writes it). False says "not known": a line
  // the general parser read may still be canonical (IsCanonical decides).
  bool canonical = false;
};
// Parses one line (without its newline) and checks its structure: the keys in order,
// their types, hex hashes, an RFC 3339 recorded_at. On failure returns nullopt and, if
// `error` is given, says what is wrong (never quoting field values: they may be PHI).
// A line in SerializeLine's own form is read directly; any other goes to ParseLineDom,
// so both give the same answer for every input (unit test, fuzz_audit_line,
// bench/audit_line), except that only the direct reader sets `canonical`.
std::optional<ParsedLine> ParseLine(std::string_view line, std::string* error = nullptr);
// The same through a Boost.JSON document: the reference ParseLine is held to.
std::optional<ParsedLine> ParseLineDom(std::string_view line, std::string* error = nullptr);
// Hash recomputed from the parsed fields.
std::string ComputeHash(const ParsedLine& p);
// True if `line` is byte for byte the canonical serialization of `p`.
bool IsCanonical(std::string_view line, const ParsedLine& p);
// Whether audit_event's columns alone give the line back (RebuildLine): the line is
// canonical and its recorded_at is in the writer's form (NowRfc3339: milliseconds, Z),
// which the column's microseconds reproduce. The shipper then leaves `record` NULL.
bool RebuildableFromColumns(const ParsedLine& p);
// The line from the columns' values: recorded_at formatted from its microseconds as the
// writer writes it, an optional column's NULL as "".
std::string RebuildLine(Record r, long long recorded_at_micros, std::string_view prev_hash,
                        const std::string& hash);
// RFC 3339 UTC with milliseconds of a time in microseconds since the epoch, as NowRfc3339
// writes it (the sub-millisecond part is dropped).
std::string FormatRfc3339Millis(long long micros);

// Best effort: the seq of a line too damaged to parse, if its start survived.
std::optional<long long> SalvageSeq(std::string_view line);

// Current time as RFC 3339 UTC with milliseconds, e.g. 2026-11-25T14:03:07.123Z.
std::string NowRfc3339();
// Microseconds since the epoch of an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SS[.f{1,6}]
// followed by Z or +HH:MM/-HH:MM); nullopt if it is not one.
std::optional<long long> ParseRfc3339Micros(std::string_view s);

// `s` as valid UTF-8 without NUL bytes: invalid sequences and NUL become U+FFFD.
std::string SanitizeUtf8(std::string_view s);
// Applies SanitizeUtf8 to every string field of `r`.
void SanitizeRecord(Record& r);

bool IsHex64(std::string_view s);

}  // namespace continuum::audit::internal
