// A request's deadline. It flows from the HTTP layer into every wait: the pool
// acquisition, the socket wait on the database, and the server-side statement_timeout.
#pragma once

#include <chrono>
#include <string>

#include "core/error.hpp"

namespace continuum {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  Deadline() : at_(Clock::time_point::max()) {}
  explicit Deadline(Clock::time_point at) : at_(at) {}
  static Deadline After(std::chrono::milliseconds d) { return Deadline(Clock::now() + d); }
  static Deadline Never() { return Deadline(); }

  Clock::time_point at() const { return at_; }
  bool is_never() const { return at_ == Clock::time_point::max(); }
  bool expired() const { return Clock::now() >= at_; }
  std::chrono::milliseconds left() const {
    if (is_never()) return std::chrono::hours(24);
    auto l = std::chrono::duration_cast<std::chrono::milliseconds>(at_ - Clock::now());
    return l.count() < 0 ? std::chrono::milliseconds(0) : l;
  }
  // Throws DeadlineExceeded naming what was being waited for.
  void Check(const char* what) const {
    if (expired()) throw DeadlineExceeded(std::string("request deadline exceeded while ") + what);
  }

 private:
  Clock::time_point at_;
};

}  // namespace continuum
