// A circuit breaker for one external dependency (EHR, pharmacy, insurance, payments,
// email, SMS), and the dependency's health as the portal reports it.
//
//   closed     calls flow; a run of `failure_threshold` consecutive failures, or a failure
//              rate above `failure_rate` over the last `window` calls (once `min_calls`
//              were made), opens it.
//   open       calls are refused at once (the caller takes its fallback) for
//              `open_for`; then
//   half-open  at most `half_open_calls` trial calls at a time; `close_after` successes in
//              a row close it, any failure opens it again.
//
// Health combines passive observations (live calls) and active ones (periodic checks):
// healthy (closed, recent calls fine), degraded (closed but failing some, or half-open),
// down (open). Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

namespace continuum::resilience {

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int failure_threshold = 5;
    double failure_rate = 0.5;
    int window = 20;
    int min_calls = 10;
    std::chrono::milliseconds open_for{5000};
    int half_open_calls = 1;
    int close_after = 2;
  };
  enum class State { kClosed, kOpen, kHalfOpen };
  enum class Health { kHealthy, kDegraded, kDown };

  explicit CircuitBreaker(Options o) : options_(o) {}

  // May a call go out now? In half-open, reserves one of the trial slots: the caller
  // must then report OnSuccess or OnFailure.
  bool Allow(Clock::time_point now = Clock::now());
  void OnSuccess(Clock::time_point now = Clock::now());
  void OnFailure(Clock::time_point now = Clock::now());
  // A call that was allowed but never made (cancelled): frees a half-open slot.
  void OnAbandoned();

  State state(Clock::time_point now = Clock::now()) const;
  Health health(Clock::time_point now = Clock::now()) const;
  struct Stats {
    uint64_t allowed = 0, refused = 0, successes = 0, failures = 0, opened = 0;
  };
  Stats stats() const;

  static const char* Name(State s);
  static const char* Name(Health h);

 private:
  void OpenLocked(Clock::time_point now);
  State StateLocked(Clock::time_point now) const;

  Options options_;
  mutable std::mutex mu_;
  State state_ = State::kClosed;
  Clock::time_point opened_at_{};
  int consecutive_failures_ = 0;
  int half_open_in_flight_ = 0;
  int half_open_successes_ = 0;
  std::deque<bool> recent_;  // last `window` outcomes, true = failure
  Stats stats_;
};

}  // namespace continuum::resilience
