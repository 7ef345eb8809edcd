#include "auth/throttle.hpp"

#include <algorithm>
#include <cmath>

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

}  // namespace continuum::auth
