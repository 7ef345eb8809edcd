// Fuzz target: the audit journal's line format (audit/internal/format.hpp). The journal
// writes each line with SerializeLine; the shipper and `continuum audit verify` read it with
// ParseLine, which reads SerializeLine's own form directly and hands anything else to
// ParseLineDom (Boost.JSON). The first byte picks the mode:
//   0  the bytes as a journal line: ParseLine and ParseLineDom give the same answer (the
//      same fields, or the same error); a line ParseLine calls canonical is SerializeLine's
//      output, and one the shipper would store without its record (RebuildableFromColumns)
//      is rebuilt exactly from the columns' values; a parsed line serializes back to a line
//      that parses to the same fields;
//   1  a record built from the bytes (fields split at 0x01), sanitized as the journal does:
//      SerializeLine writes what boost::json::serialize writes for the same object, and
//      ParseLine reads it back unchanged.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "audit/internal/format.hpp"

using continuum::audit::Record;
namespace internal = continuum::audit::internal;

namespace {

[[noreturn]] void Broken(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

std::string Canonical(const internal::ParsedLine& p) {
  return internal::SerializeLine(p.record, p.prev_hash, &p.hash);
}

void CheckLine(std::string_view line) {
  std::string fast_error, dom_error;
  const auto fast = internal::ParseLine(line, &fast_error);
  const auto dom = internal::ParseLineDom(line, &dom_error);
  if (fast.has_value() != dom.has_value()) Broken("ParseLine and ParseLineDom disagree");
  if (fast_error != dom_error) Broken("ParseLine and ParseLineDom give different errors");
  if (!fast) return;
  if (fast->record.seq != dom->record.seq || Canonical(*fast) != Canonical(*dom) ||
      fast->recorded_at_micros != dom->recorded_at_micros) {
    Broken("ParseLine and ParseLineDom read different fields");
  }
  if (fast->canonical && Canonical(*fast) != line) Broken("a line said canonical is not");
  if (internal::RebuildableFromColumns(*fast) &&
      internal::RebuildLine(fast->record, fast->recorded_at_micros, fast->prev_hash, fast->hash) !=
          line) {
    Broken("a line the shipper stores without its record is not rebuilt from the columns");
  }
  const std::string again = Canonical(*fast);
  const auto back = internal::ParseLine(again);
  if (!back || Canonical(*back) != again) Broken("a parsed line does not serialize back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    CheckLine(in);
    return 0;
  }
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= in.size(); ++i) {
    if (i == in.size() || in[i] == '\x01') {
      parts.emplace_back(in.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.resize(6);
  Record r;
  r.seq = 1 + static_cast<long long>(in.size());
  r.recorded_at = "2026-12-06T20:01:02.345Z";
  r.region = "eu-west";
  r.node_id = parts[0].empty() ? "n1" : parts[0];
  r.request_id = parts[1];
  r.actor = parts[2];
  r.resource_id = parts[3];
  r.patient_id = parts[4];
  r.detail = parts[5];
  internal::SanitizeRecord(r);
  const std::string prev(64, '0');
  const std::string hash = internal::Sha256Hex(internal::SerializeLine(r, prev, nullptr));
  const std::string line = internal::SerializeLine(r, prev, &hash);
  if (line != internal::SerializeLineDom(r, prev, &hash))
    Broken("SerializeLine differs from boost::json::serialize");
  const auto p = internal::ParseLine(line);
  if (!p) Broken("a serialized record does not parse");
  if (Canonical(*p) != line || internal::ComputeHash(*p) != hash) Broken("round trip changed it");
  CheckLine(line);
  return 0;
}
