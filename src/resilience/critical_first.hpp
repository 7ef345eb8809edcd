// Critical first: the medical record before everything else when a node is saturated.
//
// The tiers' bulkheads (max_in_flight) cap how many requests of each tier a shard works
// on, so one tier cannot take the others' capacity; they do not order the work. On a
// saturated node every request in flight shares the same CPU, so the critical tier
// served only about half of what it gets alone once the other tiers' users were busy
// too (bench/mixed). This gate orders it.
//
// It engages on a shard while both hold:
//  - the shard works on at least `threshold` critical-tier requests at once, and
//  - the shard's CPU is saturated while the critical tier moves: while the first holds, a
//    timer measures every `probe period` how late the event loop runs a due timer (the
//    work queued ahead of it, and the thread's wait for a core). A probe at `lag_limit` or
//    more late, with at least one critical request served (not a 5xx) since the last
//    probe, engages the gate; four probes in a row that are on time (below half the limit)
//    or see no critical request served release it. So critical requests that wait on
//    their own database (a held pool, hung queries) never hold the other tiers back,
//    whatever else keeps the CPU busy: they serve nothing, and more CPU would not help
//    them. The bulkheads alone isolate that case. lag_limit 0 engages on the threshold
//    alone (tests).
// While engaged, each other tier (high, medium, low) works on at most `lower_limit`
// requests at once on that shard; its further requests wait their turn, in arrival
// order. When the gate disengages, everything waiting goes at once.
//
// It delays, it never refuses: a request that has waited half of its time to the
// deadline goes ahead anyway (counted as overdue), so it keeps the rest of its time for
// its own work and its tier's fallbacks (stale cached content, a queued write, read-only)
// instead of a 503 from here.
//
// The limit is per tier, not shared: a tier whose requests hang (a billing backend that
// does not answer) holds only its own slots, never another tier's. A request waiting here
// already holds its tier's bulkhead slot, so the tier's max_in_flight still caps what
// waits.
//
// One per shard; every call on the shard's thread (not thread-safe), except stats() and
// engaged_now(), which any thread may read. Close() before the shard's io_context is
// destroyed (its waiters' and probe's timers belong to it).
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>

#include "core/deadline.hpp"
#include "core/tier.hpp"

namespace continuum::resilience {

struct CriticalFirstOptions {
  // Per lower tier, requests worked on at once on this shard while engaged. 0: off
  // (every Enter admits at once).
  int lower_limit = 0;
  int threshold = 1;                             // critical requests in flight on this shard (>= 1)
  std::chrono::microseconds lag_limit{0};        // 0: engage on the threshold alone
  std::chrono::microseconds probe_period{5000};  // how often the lag is measured
};

class CriticalFirst {
 public:
  CriticalFirst(boost::asio::any_io_executor ex, CriticalFirstOptions options);
  // lag_limit 0: engages on the threshold alone.
  CriticalFirst(boost::asio::any_io_executor ex, int lower_limit, int threshold = 1)
      : CriticalFirst(std::move(ex), CriticalFirstOptions{lower_limit, threshold}) {}
  ~CriticalFirst();
  CriticalFirst(const CriticalFirst&) = delete;
  CriticalFirst& operator=(const CriticalFirst&) = delete;

  // A critical-tier request starts / ends on this shard; `served`: it was answered (not a
  // 5xx), the critical tier moves.
  void CriticalBegin();
  void CriticalEnd(bool served = true);

  // A high, medium or low tier request asks to start; it returns once admitted (at its
  // turn, or when it has waited half of its time to `deadline`). Call Leave when done.
  boost::asio::awaitable<void> Enter(Tier tier, Deadline deadline);
  void Leave(Tier tier);

  // The node stops: every waiter goes, the probe stops, and nothing waits from now on.
  void Close();

  bool engaged() const { return Engaged(); }
  int critical_in_flight() const { return critical_; }
  int active(Tier t) const { return active_[Index(t)]; }
  int waiting(Tier t) const { return static_cast<int>(waiters_[Index(t)].size()); }

  struct TierStats {
    std::atomic<uint64_t> waited{0};   // requests that had to wait their turn
    std::atomic<uint64_t> overdue{0};  // of those, went ahead at half their time to deadline
    std::atomic<uint64_t> wait_us{0};  // total time waited (microseconds)
    std::atomic<int64_t> waiting{0};   // waiting now
  };
  // Indexed by Tier (high, medium, low; the others stay 0).
  const std::array<TierStats, 5>& stats() const { return stats_; }
  // 1 while engaged (any thread may read).
  int engaged_now() const { return engaged_now_.load(std::memory_order_relaxed); }
  // Lag measurements taken, and of those at or above lag_limit (any thread may read).
  uint64_t probes() const { return probes_.load(std::memory_order_relaxed); }
  uint64_t late_probes() const { return late_probes_.load(std::memory_order_relaxed); }
  // Of the probes, those taken while the gate was engaged.
  uint64_t engaged_probes() const { return engaged_probes_.load(std::memory_order_relaxed); }

 private:
  struct Waiter;
  static int Index(Tier t) { return static_cast<int>(t); }
  bool Engaged() const {
    return opt_.lower_limit > 0 && !closed_ && critical_ >= opt_.threshold &&
           (opt_.lag_limit.count() == 0 || saturated_);
  }
  bool MayStart(int t) const { return !Engaged() || active_[t] < opt_.lower_limit; }
  void Wake(int t);
  void WakeAll();
  void Probe();
  void Arm(const std::shared_ptr<boost::asio::steady_timer>& t);
  void OnProbe(std::chrono::steady_clock::duration lag);
  void Publish() { engaged_now_.store(Engaged() ? 1 : 0, std::memory_order_relaxed); }

  boost::asio::any_io_executor ex_;
  CriticalFirstOptions opt_;
  int critical_ = 0;
  static constexpr int kReleaseAfter = 4;  // calm probes in a row that release the gate
  bool saturated_ = false;                 // the lag measurements (with hysteresis)
  int calm_ = 0;                           // calm probes in a row (capped at kReleaseAfter)
  uint64_t served_ = 0;                    // critical requests served since the last probe
  bool closed_ = false;
  std::shared_ptr<boost::asio::steady_timer> probe_;       // while measuring
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);  // expires with the gate
  std::array<int, 5> active_{};
  std::array<std::deque<std::shared_ptr<Waiter>>, 5> waiters_;
  std::array<TierStats, 5> stats_;
  std::atomic<int> engaged_now_{0};
  std::atomic<uint64_t> probes_{0};
  std::atomic<uint64_t> late_probes_{0};
  std::atomic<uint64_t> engaged_probes_{0};
};

}  // namespace continuum::resilience
