// Helpers shared by the audit unit and PostgreSQL tests (header only: not a test TU).
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "audit/internal/files.hpp"
#include "audit/journal.hpp"
#include "audit/verify.hpp"

namespace continuum::audit::test_util {
namespace asio = boost::asio;
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/continuum-audit-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  fs::path path_;
};

inline Record MakeRecord(int i) {
  Record r;
  r.request_id = "req-" + std::to_string(i);
  r.actor = "dr.house";
  r.role = "provider";
  r.action = "read";
  r.resource_type = "MedicationStatement";
  r.resource_id = "med-" + std::to_string(i);
  r.patient_id = "pat-" + std::to_string(i % 7);
  r.client_address = "10.0.0." + std::to_string(i % 250);
  r.outcome = "success";
  return r;
}

inline JournalOptions Options(const TempDir& dir, std::size_t segment_bytes = 64 << 20) {
  JournalOptions o;
  o.dir = dir.str();
  o.node_id = "node-a";
  o.region = "eu-1";
  o.segment_bytes = segment_bytes;
  return o;
}

// Runs one Append on a private io_context; rethrows its failure.
inline void AppendSync(Journal& j, std::vector<Record> records) {
  asio::io_context io;
  std::exception_ptr error;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> { co_await j.Append(io.get_executor(), std::move(records)); },
      [&](std::exception_ptr e) { error = e; });
  io.run();  // returns only once the journal completed (it holds outstanding work)
  if (error) std::rethrow_exception(error);
}

inline void AppendN(Journal& j, int from, int n) {
  for (int i = from; i < from + n; ++i) AppendSync(j, {MakeRecord(i)});
}

inline std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

// The lines of a segment, without the zero-filled padding an open journal keeps ahead.
inline std::vector<std::string> Lines(const std::string& data) {
  std::vector<std::string> out;
  std::istringstream in(data.substr(0, internal::PaddingStart(data)));
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

inline std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

inline std::vector<fs::path> Segments(const TempDir& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".jsonl") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline fs::path FirstSegment(const TempDir& dir) {
  return dir.path() / "journal-node-a-000001.jsonl";
}

inline bool HasProblem(const VerifyReport& r, const std::string& needle) {
  for (const auto& p : r.problems) {
    if (p.find(needle) != std::string::npos) return true;
  }
  return false;
}

inline std::string Dump(const VerifyReport& r) {
  std::string s;
  for (const auto& p : r.problems) s += "  problem: " + p + "\n";
  for (const auto& n : r.notes) s += "  note: " + n + "\n";
  return s;
}

}  // namespace continuum::audit::test_util
