// Login throttling, in memory (thread-safe), in three layers (see src/auth/README.md):
//  1. LoginThrottle: attempts per client (a token bucket), whatever the account;
//  2. FailureThrottle: failed attempts per client AND account -- a guesser is stopped on
//     the account it guesses at without the account being locked for its owner;
//  3. account lockout (database, account table) for guessing spread over many clients,
//     at a higher threshold, which a correct password plus a correct one-time code passes.
// Clients are keyed by ThrottleKey: an IPv6 client by its /64 (one host usually owns a
// whole /64, and would otherwise have 2^64 buckets).
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace continuum::auth {

// The throttling key of a client address: IPv4 as is ("192.0.2.7"; an IPv4-mapped IPv6
// address is its IPv4 address), IPv6 as its /64 prefix ("2001:db8:1:2::/64"). Anything
// that does not parse is used as given.
std::string ThrottleKey(std::string_view address);

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

// Failed logins per key (client and account): after `max_failures` failures within
// `window`, Blocked answers the seconds until the window ends. A success clears the key.
class FailureThrottle {
 public:
  static constexpr std::size_t kMaxKeys = 100000;

  FailureThrottle(int max_failures, std::chrono::seconds window)
      : max_failures_(max_failures), window_(window) {}
  // 0 if `key` may try, else seconds to wait (>= 1).
  int Blocked(const std::string& key, std::chrono::steady_clock::time_point now);
  void Failed(const std::string& key, std::chrono::steady_clock::time_point now);
  void Succeeded(const std::string& key);
  std::size_t size();

 private:
  struct Entry {
    int failures = 0;
    std::chrono::steady_clock::time_point since;  // first failure of the window
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  int max_failures_;
  std::chrono::seconds window_;
};

}  // namespace continuum::auth
