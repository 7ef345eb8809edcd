// bench/audit_line: the CPU one audit record costs in the journal's line format, per line,
// each way of doing it timed in the same process, in alternating rounds:
//   write  what the journal's writer thread does per record: SanitizeRecord, the line
//          serialized without its hash, its SHA-256, the hash appended (SerializeLine
//          written directly, against SerializeLineDom through a Boost.JSON document);
//   read   what the shipper thread does per line before its COPY: ParseLine (the
//          writer's own form read directly) against ParseLineDom (a Boost.JSON document).
// Usage: bench/audit_line [--lines N] [--rounds R]   (built by the script of that name)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "audit/internal/format.hpp"

namespace {

using continuum::audit::Record;
namespace internal = continuum::audit::internal;
using Clock = std::chrono::steady_clock;

// Records shaped like the portal's: a search or read by a patient or a provider.
std::vector<Record> MakeRecords(int n) {
  std::mt19937 rng(14);
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    Record r;
    char id[40];
    std::snprintf(id, sizeof id, "%08x%08x%08x%08x", static_cast<unsigned>(rng()),
                  static_cast<unsigned>(rng()), static_cast<unsigned>(rng()),
                  static_cast<unsigned>(rng()));
    r.request_id = id;
    const unsigned patient = rng() % 2000000 + 1;
    const bool provider = i % 3 == 0;
    r.actor = provider ? "provider-" + std::to_string(rng() % 3000 + 1)
                       : "patient-" + std::to_string(patient);
    r.role = provider ? "provider" : "patient";
    r.action = i % 2 ? "search" : "read";
    r.resource_type = i % 2 ? "AllergyIntolerance" : "Patient";
    r.resource_id = i % 2 ? "" : std::to_string(patient);
    r.patient_id = std::to_string(patient);
    r.client_address = "10.0." + std::to_string(rng() % 256) + "." + std::to_string(rng() % 256);
    r.outcome = "success";
    r.recorded_at = "2026-12-06T20:01:02.345Z";
    r.region = "eu-west";
    r.node_id = "eu-west-1";
    r.seq = 1000000 + i;
    out.push_back(std::move(r));
  }
  return out;
}

// One pass of the writer's work over `records`; returns ns per line.
template <typename Serialize>
double WritePass(std::vector<Record> records, Serialize serialize, std::size_t& sink) {
  std::string prev(64, '0');
  const auto t0 = Clock::now();
  for (auto& r : records) {
    internal::SanitizeRecord(r);
    std::string line = serialize(r, prev);
    std::string hash = internal::Sha256Hex(line);
    line.pop_back();
    line.append(R"(,"hash":")").append(hash).append("\"}\n");
    sink += line.size();
    prev = std::move(hash);
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / records.size();
}

template <typename Parse>
double ReadPass(const std::vector<std::string>& lines, Parse parse, std::size_t& sink) {
  const auto t0 = Clock::now();
  for (const auto& l : lines) {
    auto p = parse(l);
    if (!p) {
      std::fprintf(stderr, "bench/audit_line: a line did not parse\n");
      std::exit(1);
    }
    sink += p->record.patient_id.size();
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / lines.size();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int lines_n = 20000, rounds = 11;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--lines") {
      lines_n = std::atoi(argv[i + 1]);
    } else if (a == "--rounds") {
      rounds = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: bench/audit_line [--lines N] [--rounds R]\n");
      return 2;
    }
  }
  if (lines_n < 1 || rounds < 1 || argc % 2 == 0) {
    std::fprintf(stderr, "usage: bench/audit_line [--lines N] [--rounds R]\n");
    return 2;
  }
  const auto records = MakeRecords(lines_n);
  std::vector<std::string> lines;
  std::string prev(64, '0');
  for (auto r : records) {
    std::string hash = internal::Sha256Hex(internal::SerializeLine(r, prev, nullptr));
    lines.push_back(internal::SerializeLine(r, prev, &hash));
    if (lines.back() != internal::SerializeLineDom(r, prev, &hash)) {
      std::fprintf(stderr, "bench/audit_line: the two serializations differ\n");
      return 1;
    }
    prev = std::move(hash);
  }
  std::size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size() + 1;
  std::size_t sink = 0;
  std::vector<double> w_direct, w_dom, r_fast, r_dom;
  auto direct = [](const Record& r, const std::string& p) {
    return internal::SerializeLine(r, p, nullptr);
  };
  auto dom = [](const Record& r, const std::string& p) {
    return internal::SerializeLineDom(r, p, nullptr);
  };
  auto fast = [](const std::string& l) { return internal::ParseLine(l); };
  auto slow = [](const std::string& l) { return internal::ParseLineDom(l); };
  for (int k = 0; k < rounds; ++k) {  // alternating, each first in every other round
    if (k % 2 == 0) {
      w_direct.push_back(WritePass(records, direct, sink));
      w_dom.push_back(WritePass(records, dom, sink));
      r_fast.push_back(ReadPass(lines, fast, sink));
      r_dom.push_back(ReadPass(lines, slow, sink));
    } else {
      w_dom.push_back(WritePass(records, dom, sink));
      w_direct.push_back(WritePass(records, direct, sink));
      r_dom.push_back(ReadPass(lines, slow, sink));
      r_fast.push_back(ReadPass(lines, fast, sink));
    }
  }
  std::printf(
      "bench/audit_line: %d lines (%zu bytes each on average), %d rounds, median ns per line\n",
      lines_n, bytes / lines.size(), rounds);
  std::printf("%-6s %-40s %10s\n", "work", "how", "ns/line");
  std::printf("%-6s %-40s %10.0f\n", "write", "SerializeLine (direct)", Median(w_direct));
  std::printf("%-6s %-40s %10.0f\n", "write", "SerializeLineDom (Boost.JSON document)",
              Median(w_dom));
  std::printf("%-6s %-40s %10.0f\n", "read", "ParseLine (the writer's form, directly)",
              Median(r_fast));
  std::printf("%-6s %-40s %10.0f\n", "read", "ParseLineDom (Boost.JSON document)", Median(r_dom));
  std::printf("write: direct/DOM %.2f; read: direct/DOM %.2f  (sink %zu)\n",
              Median(w_direct) / Median(w_dom), Median(r_fast) / Median(r_dom), sink % 10);
  return 0;
}
