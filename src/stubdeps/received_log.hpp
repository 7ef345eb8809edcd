// What a stand-in received and acted on (charges made, messages and mails accepted,
// refills requested, eligibility checks, EHR searches), so that tests can check
// exactly-once delivery through GET /admin/log/{dependency}. Bounded: the oldest
// entries are dropped past `capacity` (and counted).
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <deque>
#include <filesystem>

#include "stubdeps/journal_file.hpp"

namespace continuum::stubdeps {

class ReceivedLog {
 public:
  explicit ReceivedLog(std::size_t capacity = 10000) : capacity_(capacity) {}

  // Loads the entries already in `path` and appends every new one to it.
  void Persist(const std::filesystem::path& path);

  // Stores `entry` with "seq" (1, 2, ... never reused) and "received_at" added.
  const boost::json::object& Append(boost::json::object entry, int64_t now_ms);

  // {"count": n, "dropped": d, "entries": [...]}.
  [[nodiscard]] boost::json::object ToJson() const;
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  [[nodiscard]] const std::deque<boost::json::object>& entries() const { return entries_; }

  // Forgets every entry (and empties the file); returns how many there were.
  std::size_t Clear();

 private:
  void Keep(boost::json::object entry);

  std::size_t capacity_;
  std::deque<boost::json::object> entries_;
  uint64_t next_seq_ = 1;
  uint64_t dropped_ = 0;
  JsonLinesFile file_;
};

}  // namespace continuum::stubdeps
