#include "auth/throttle.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace continuum::auth {
namespace {

// Returned when the bucket can never refill (a zero rate or a burst below one).
constexpr int kMaxWaitSeconds = 3600;
// Tolerance for the floating-point refill (60 s at 1/60 per second may sum to 0.999...),
// so that a client retrying after exactly the advertised wait is let in.
constexpr double kEpsilon = 1e-9;

}  // namespace

double LoginThrottle::Refilled(const Bucket& b, std::chrono::steady_clock::time_point now) const {
  if (now <= b.at) return b.tokens;  // a clock that went backwards refills nothing
  double elapsed = std::chrono::duration<double>(now - b.at).count();
  return std::min(burst_, b.tokens + elapsed * rate_);
}

void LoginThrottle::Evict(std::chrono::steady_clock::time_point now) {
  std::erase_if(buckets_,
                [&](const auto& kv) { return Refilled(kv.second, now) >= burst_ - kEpsilon; });
  evict_at_ = std::max(kMaxBuckets + 1, 2 * buckets_.size());
}

int LoginThrottle::Acquire(const std::string& client, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = buckets_.find(client);
  if (it == buckets_.end()) {
    if (buckets_.size() + 1 >= evict_at_) Evict(now);
    it = buckets_.emplace(client, Bucket{burst_, now}).first;
  } else {
    it->second.tokens = Refilled(it->second, now);
    it->second.at = std::max(it->second.at, now);
  }
  Bucket& b = it->second;
  if (b.tokens >= 1.0 - kEpsilon) {
    b.tokens -= 1.0;
    return 0;
  }
  if (rate_ <= 0 || burst_ < 1.0) return kMaxWaitSeconds;
  double wait = std::ceil((1.0 - b.tokens) / rate_ - kEpsilon);
  return static_cast<int>(std::clamp(wait, 1.0, static_cast<double>(kMaxWaitSeconds)));
}

std::size_t LoginThrottle::size() {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

std::string ThrottleKey(std::string_view address) {
  if (address.find(':') == std::string_view::npos || address.size() >= INET6_ADDRSTRLEN)
    return std::string(address);
  char buf[INET6_ADDRSTRLEN] = {};
  address.copy(buf, address.size());
  unsigned char a[16];
  if (inet_pton(AF_INET6, buf, a) != 1) return std::string(address);
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(a, kMapped, sizeof kMapped) == 0) {
    inet_ntop(AF_INET, a + 12, out, sizeof out);
    return out;
  }
  std::memset(a + 8, 0, 8);
  inet_ntop(AF_INET6, a, out, sizeof out);
  return std::string(out) + "/64";
}

int FailureThrottle::Blocked(const std::string& key, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end() || it->second.failures < max_failures_) return 0;
  auto end = it->second.since + window_;
  if (now >= end) {
    map_.erase(it);
    return 0;
  }
  auto s = std::chrono::duration_cast<std::chrono::seconds>(end - now).count() + 1;
  return static_cast<int>(std::clamp<int64_t>(s, 1, kMaxWaitSeconds));
}

void FailureThrottle::Failed(const std::string& key, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  if (map_.size() >= kMaxKeys) {
    // Full: forget ended windows, then partial counts (they only delay a block).
    std::erase_if(map_, [&](const auto& kv) { return now >= kv.second.since + window_; });
    if (map_.size() >= kMaxKeys)
      std::erase_if(map_, [&](const auto& kv) { return kv.second.failures < max_failures_; });
  }
  Entry& e = map_[key];
  if (e.failures == 0 || now >= e.since + window_) {
    e.failures = 0;
    e.since = now;
  }
  ++e.failures;
}

void FailureThrottle::Succeeded(const std::string& key) {
  std::lock_guard lock(mu_);
  map_.erase(key);
}

std::size_t FailureThrottle::size() {
  std::lock_guard lock(mu_);
  return map_.size();
}

}  // namespace continuum::auth
