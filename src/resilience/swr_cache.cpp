#include "resilience/swr_cache.hpp"

#include <algorithm>
#include <vector>

namespace continuum::resilience {

std::optional<SwrCache::Hit> SwrCache::Get(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++stats_.misses;
    return std::nullopt;
  }
  const Entry& e = it->second;
  auto age = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.stored);
  Hit h{e.value, Freshness::kExpired, age, e.failed, age <= options_.stale_if_error};
  if (age <= options_.fresh)
    h.freshness = Freshness::kFresh;
  else if (age <= options_.fresh + options_.stale_while_revalidate)
    h.freshness = Freshness::kRevalidate;
  if (h.freshness == Freshness::kFresh && !e.failed)
    ++stats_.hits;
  else
    ++stats_.stale_hits;
  return h;
}

void SwrCache::Put(const std::string& key, std::string value, Clock::time_point now) {
  std::lock_guard lock(mu_);
  Entry& e = map_[key];
  e.value = std::move(value);
  e.stored = now;
  e.failed = false;
  if (map_.size() > options_.max_entries) EvictLocked(now);
}

void SwrCache::EvictLocked(Clock::time_point) {
  // Drop the oldest tenth (rare: only when full), never an entry being refreshed.
  std::vector<std::pair<Clock::time_point, const std::string*>> by_age;
  by_age.reserve(map_.size());
  for (const auto& [k, e] : map_)
    if (!e.refreshing) by_age.emplace_back(e.stored, &k);
  std::size_t drop = std::max<std::size_t>(1, map_.size() / 10);
  drop = std::min(drop, by_age.size());
  std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                   by_age.end());
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < drop; ++i) keys.push_back(*by_age[i].second);
  for (const auto& k : keys) map_.erase(k);
}

bool SwrCache::BeginRefresh(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return true;  // nothing cached: the caller loads anyway
  if (it->second.refreshing) return false;
  it->second.refreshing = true;
  return true;
}

void SwrCache::EndRefresh(const std::string& key, bool ok) {
  std::lock_guard lock(mu_);
  auto it = map_.find(key);
  if (!ok) ++stats_.refresh_failures;
  if (it == map_.end()) return;
  it->second.refreshing = false;
  if (!ok) it->second.failed = true;
}

SwrCache::Stats SwrCache::stats() const {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.entries = map_.size();
  return s;
}

}  // namespace continuum::resilience
