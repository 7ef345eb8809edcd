// Critical first: the medical record before everything else when a node is saturated.
//
// The tiers' bulkheads (max_in_flight) cap how many requests of each tier a shard works
// on, so one tier cannot take the others' capacity; they do not order the work. On a
// saturated node every request in flight shares the same CPU, so the critical tier
// served only about half of what it gets alone once the other tiers' users were busy
// too (bench/mixed). This gate orders it: while a shard works on at least `threshold`
// critical-tier requests at once (the critical tier is under pressure: its users queue
// for the CPU or the database), each other tier (high, medium, low) works on at most
// `lower_limit` requests at once on that shard; its further requests wait their turn, in
// arrival order, and are refused (the caller answers 503) when their deadline comes
// first. When the critical work falls below the threshold, everything waiting goes at
// once. Below it (a node with room to spare) nothing waits: a billing request that waits
// seconds on its payment processor does not hold up the next one because one patient
// happens to be reading a record.
//
// The limit is per tier, not shared: a tier whose requests hang (a billing backend that
// does not answer) holds only its own slots, never another tier's, so the bulkheads'
// isolation stays intact. A request waiting here already holds its tier's bulkhead
// slot, so the tier's max_in_flight still caps what waits.
//
// One per shard; every call on the shard's thread (not thread-safe), except stats(),
// which any thread may read.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <memory>

#include "core/deadline.hpp"
#include "core/tier.hpp"

namespace continuum::resilience {

class CriticalFirst {
 public:
  // lower_limit: per lower tier, requests worked on at once on this shard while at least
  // `threshold` (>= 1) critical requests are in flight here. 0 turns the gate off (every
  // Enter admits at once).
  CriticalFirst(boost::asio::any_io_executor ex, int lower_limit, int threshold = 1);
  ~CriticalFirst();
  CriticalFirst(const CriticalFirst&) = delete;
  CriticalFirst& operator=(const CriticalFirst&) = delete;

  // A critical-tier request starts / ends on this shard.
  void CriticalBegin();
  void CriticalEnd();

  // A high, medium or low tier request asks to start: true once admitted (it then calls
  // Leave when done), false when `deadline` came first (it was never admitted).
  boost::asio::awaitable<bool> Enter(Tier tier, Deadline deadline);
  void Leave(Tier tier);

  int lower_limit() const { return limit_; }
  int threshold() const { return threshold_; }
  int critical_in_flight() const { return critical_; }
  int active(Tier t) const { return active_[Index(t)]; }
  int waiting(Tier t) const { return static_cast<int>(waiters_[Index(t)].size()); }

  struct TierStats {
    std::atomic<uint64_t> waited{0};     // requests that had to wait their turn
    std::atomic<uint64_t> timed_out{0};  // of those, refused at their deadline
    std::atomic<uint64_t> wait_us{0};    // total time waited (microseconds)
    std::atomic<int64_t> waiting{0};     // waiting now
  };
  // Indexed by Tier (high, medium, low; the others stay 0).
  const std::array<TierStats, 5>& stats() const { return stats_; }

 private:
  struct Waiter;
  static int Index(Tier t) { return static_cast<int>(t); }
  bool MayStart(int t) const {
    return limit_ <= 0 || critical_ < threshold_ || active_[t] < limit_;
  }
  void Wake(int t);

  boost::asio::any_io_executor ex_;
  int limit_;
  int threshold_;
  int critical_ = 0;
  std::array<int, 5> active_{};
  std::array<std::deque<std::shared_ptr<Waiter>>, 5> waiters_;
  std::array<TierStats, 5> stats_;
};

}  // namespace continuum::resilience
