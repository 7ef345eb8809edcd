// Read-your-writes across replicas. After a session writes, the node remembers the WAL
// position of that commit; the session's reads then skip standbys that have not
// replayed it (db::Topology::ChooseRead). An entry can be forgotten once it is older
// than the replica lag bound: every standby still eligible then has replayed it.
//
// The edge hashes a session to one node of its region, so the node that wrote is the
// node that reads. A client that moves between nodes can carry the position itself:
// writes answer with X-Continuum-LSN, and reads honour X-Continuum-Min-LSN.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace continuum::portal {

class WriteTracker {
 public:
  explicit WriteTracker(std::chrono::milliseconds keep) : keep_(keep) {}
  void Note(const std::string& session, uint64_t lsn);
  uint64_t MinLsn(const std::string& session) const;  // 0: no constraint
  std::size_t size() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    uint64_t lsn = 0;
    Clock::time_point at;
  };
  std::chrono::milliseconds keep_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  Clock::time_point last_sweep_{};
};

}  // namespace continuum::portal
