#include "resilience/breaker.hpp"

#include <algorithm>

namespace continuum::resilience {

const char* CircuitBreaker::Name(State s) {
  switch (s) {
    case State::kClosed:
      return "closed";
    case State::kOpen:
      return "open";
    default:
      return "half-open";
  }
}

const char* CircuitBreaker::Name(Health h) {
  switch (h) {
    case Health::kHealthy:
      return "healthy";
    case Health::kDegraded:
      return "degraded";
    default:
      return "down";
  }
}

CircuitBreaker::State CircuitBreaker::StateLocked(Clock::time_point now) const {
  if (state_ == State::kOpen && now - opened_at_ >= options_.open_for) return State::kHalfOpen;
  return state_;
}

void CircuitBreaker::OpenLocked(Clock::time_point now) {
  state_ = State::kOpen;
  opened_at_ = now;
  half_open_in_flight_ = 0;
  half_open_successes_ = 0;
  ++stats_.opened;
}

bool CircuitBreaker::Allow(Clock::time_point now) {
  std::lock_guard lock(mu_);
  State s = StateLocked(now);
  if (s == State::kHalfOpen && state_ == State::kOpen) {
    state_ = State::kHalfOpen;  // the open period is over: start probing
    half_open_in_flight_ = 0;
    half_open_successes_ = 0;
  }
  bool ok = s == State::kClosed ||
            (s == State::kHalfOpen && half_open_in_flight_ < options_.half_open_calls);
  if (ok && s == State::kHalfOpen) ++half_open_in_flight_;
  ++(ok ? stats_.allowed : stats_.refused);
  return ok;
}

void CircuitBreaker::OnSuccess(Clock::time_point) {
  std::lock_guard lock(mu_);
  ++stats_.successes;
  consecutive_failures_ = 0;
  recent_.push_back(false);
  while (static_cast<int>(recent_.size()) > options_.window) recent_.pop_front();
  if (state_ == State::kHalfOpen) {
    half_open_in_flight_ = std::max(0, half_open_in_flight_ - 1);
    if (++half_open_successes_ >= options_.close_after) {
      state_ = State::kClosed;
      recent_.clear();
    }
  }
}

void CircuitBreaker::OnFailure(Clock::time_point now) {
  std::lock_guard lock(mu_);
  ++stats_.failures;
  ++consecutive_failures_;
  recent_.push_back(true);
  while (static_cast<int>(recent_.size()) > options_.window) recent_.pop_front();
  if (state_ == State::kHalfOpen) {
    OpenLocked(now);
    return;
  }
  if (state_ != State::kClosed) return;
  int failures = static_cast<int>(std::count(recent_.begin(), recent_.end(), true));
  bool rate = static_cast<int>(recent_.size()) >= options_.min_calls &&
              failures > options_.failure_rate * static_cast<double>(recent_.size());
  if (consecutive_failures_ >= options_.failure_threshold || rate) OpenLocked(now);
}

void CircuitBreaker::OnAbandoned() {
  std::lock_guard lock(mu_);
  if (state_ == State::kHalfOpen) half_open_in_flight_ = std::max(0, half_open_in_flight_ - 1);
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  return StateLocked(now);
}

CircuitBreaker::Health CircuitBreaker::health(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  State s = StateLocked(now);
  if (s == State::kOpen) return Health::kDown;
  if (s == State::kHalfOpen) return Health::kDegraded;
  bool any_failure = std::find(recent_.begin(), recent_.end(), true) != recent_.end();
  return any_failure || consecutive_failures_ > 0 ? Health::kDegraded : Health::kHealthy;
}

CircuitBreaker::Stats CircuitBreaker::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace continuum::resilience
