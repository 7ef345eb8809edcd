// Login throttling per client address: a token bucket in memory (thread-safe).
// Account lockout after repeated failures is kept in the database (account table).
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace continuum::auth {

class LoginThrottle {
 public:
  // `burst` attempts at once, refilled at `per_minute` per minute.
  LoginThrottle(double burst = 10, double per_minute = 30) : burst_(burst), rate_(per_minute / 60.0) {}
  // Returns 0 if allowed, else seconds until the next attempt is allowed.
  int Acquire(const std::string& client, std::chrono::steady_clock::time_point now);

 private:
  struct Bucket { double tokens; std::chrono::steady_clock::time_point at; };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  double burst_;
  double rate_;
};

}  // namespace continuum::auth
