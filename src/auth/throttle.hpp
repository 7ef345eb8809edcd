// Login throttling per client address: a token bucket in memory (thread-safe).
// Account lockout after repeated failures is kept in the database (account table).
// Callers should key IPv6 clients by their /64 prefix, or one host owns a whole range.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>

namespace continuum::auth {

class LoginThrottle {
 public:
  // Above this many buckets, buckets that have refilled completely (indistinguishable
  // from a fresh one, so nothing is lost) are evicted.
  static constexpr std::size_t kMaxBuckets = 100000;

  // `burst` attempts at once, refilled at `per_minute` per minute.
  LoginThrottle(double burst = 10, double per_minute = 30)
      : burst_(burst), rate_(per_minute / 60.0) {}
  // Returns 0 if allowed (and consumes one token), else seconds until the next attempt is
  // allowed (at least 1; a refused attempt consumes nothing).
  int Acquire(const std::string& client, std::chrono::steady_clock::time_point now);
  std::size_t size();  // buckets held (for tests and metrics)

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point at;
  };
  double Refilled(const Bucket& b, std::chrono::steady_clock::time_point now) const;
  void Evict(std::chrono::steady_clock::time_point now);

  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  double burst_;
  double rate_;
  // Eviction runs when the map reaches this size; it is then set to twice what the
  // eviction left (at least kMaxBuckets), so a map full of busy buckets costs O(1)
  // amortised per new client rather than a full scan each time.
  std::size_t evict_at_ = kMaxBuckets + 1;
};

}  // namespace continuum::auth
