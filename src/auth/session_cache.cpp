#include "auth/session_cache.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace continuum::auth {

SessionCache::SessionCache(int idle_timeout_s) : idle_timeout_s_(idle_timeout_s) {
  if (idle_timeout_s <= 0) throw std::invalid_argument("session idle timeout must be positive");
}

SessionCache::Shard& SessionCache::ShardFor(const std::string& sid) {
  // The inner maps bucket on the same hash; take the shard from its top bits (after a
  // multiplicative mix) so the two choices are independent.
  uint64_t h = std::hash<std::string>{}(sid)*0x9E3779B97F4A7C15ull;
  return shards_[h >> 60];
}
static_assert(16 == 1u << 4, "ShardFor takes the top 4 bits");

bool SessionCache::IdleExpired(int64_t last_seen, int64_t now) const {
  // In 128 bits: last_seen starts at INT64_MIN and inputs come from other nodes.
  return static_cast<__int128>(now) - last_seen > idle_timeout_s_;
}

SessionCache::State SessionCache::Touch(const std::string& sid, int64_t iat, int64_t now) {
  Shard& s = ShardFor(sid);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(sid);
  if (it == s.map.end()) {
    if (IdleExpired(iat, now)) return State::kIdleExpired;  // nothing worth remembering
    it = s.map.emplace(sid, Entry{}).first;
  }
  Entry& e = it->second;
  if (e.revoked) return State::kRevoked;
  int64_t last = std::max(e.last_seen, iat);
  if (IdleExpired(last, now)) return State::kIdleExpired;
  e.last_seen = std::max(last, now);
  if (!e.dirty) {
    e.dirty = true;
    s.dirty.push_back(sid);
  }
  return State::kLive;
}

void SessionCache::RevokeLocked(Shard& s, const std::string& sid, int64_t exp) {
  Entry& e = s.map[sid];
  e.revoked_until = e.revoked ? std::max(e.revoked_until, exp) : exp;
  e.revoked = true;
}

void SessionCache::Revoke(const std::string& sid, int64_t exp) {
  Shard& s = ShardFor(sid);
  std::lock_guard lock(s.mu);
  RevokeLocked(s, sid, exp);
}

void SessionCache::ApplyRevocations(const std::vector<std::pair<std::string, int64_t>>& revoked) {
  for (const auto& [sid, exp] : revoked) {
    Shard& s = ShardFor(sid);
    std::lock_guard lock(s.mu);
    RevokeLocked(s, sid, exp);
  }
}

void SessionCache::ApplyLastSeen(const std::vector<std::pair<std::string, int64_t>>& seen) {
  for (const auto& [sid, at] : seen) {
    Shard& s = ShardFor(sid);
    std::lock_guard lock(s.mu);
    Entry& e = s.map[sid];
    e.last_seen = std::max(e.last_seen, at);  // not dirty: not local activity
  }
}

std::vector<std::pair<std::string, int64_t>> SessionCache::TakeDirtyLastSeen() {
  std::vector<std::pair<std::string, int64_t>> out;
  for (Shard& s : shards_) {
    std::vector<std::string> dirty;
    {
      std::lock_guard lock(s.mu);
      dirty.swap(s.dirty);
      out.reserve(out.size() + dirty.size());
      for (std::string& sid : dirty) {
        auto it = s.map.find(sid);
        if (it == s.map.end() || !it->second.dirty) continue;  // swept meanwhile
        it->second.dirty = false;
        out.emplace_back(std::move(sid), it->second.last_seen);
      }
    }
  }
  return out;
}

std::size_t SessionCache::size() const {
  std::size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.map.size();
  }
  return n;
}

void SessionCache::Sweep(int64_t now) {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    std::erase_if(s.map, [&](const auto& kv) {
      const Entry& e = kv.second;
      return e.revoked ? now > e.revoked_until : IdleExpired(e.last_seen, now);
    });
    // Drop dirty-list names whose entry is gone, so the list cannot outgrow the map.
    if (s.dirty.size() > s.map.size()) {
      std::erase_if(s.dirty, [&](const std::string& sid) { return !s.map.contains(sid); });
    }
  }
}

}  // namespace continuum::auth
