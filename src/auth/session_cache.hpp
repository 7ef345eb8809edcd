// Per-node view of session liveness, consulted on every authenticated request after the
// token's MAC and absolute expiry have been checked, so that revocation and idle expiry
// need no database round trip. The database `session` table is the shared truth: each
// node flushes its local activity (TakeDirtyLastSeen -> last_seen_at = GREATEST(...))
// and polls revocations and other nodes' activity (ApplyRevocations, ApplyLastSeen).
//
// Thread-safe; sharded (16 shards, one mutex each) because Touch is on every request.
//
// Correctness notes for callers:
//  * A revoked sid must stay known until the token's absolute expiry: if it were dropped,
//    Touch would fall back to the token's iat (or a later ApplyLastSeen from a node that
//    had not yet seen the revocation would re-create it) and accept the token again. So
//    revocations carry the session's absolute expiry (session.expires_at, claims.exp),
//    and Sweep keeps revoked entries until then.
//  * A node that starts (or restarts) must load all revocations whose expires_at is in the
//    future, and the last_seen_at of sessions seen within the idle timeout, before it
//    serves traffic; afterwards incremental polls suffice.
//  * Idle expiry is judged on this node's view, which lags other nodes' activity by the
//    flush + poll interval; a session used only on another node within that lag of the
//    idle limit may be refused here. Never the other way round: the view only lags.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace continuum::auth {

class SessionCache {
 public:
  // idle_timeout_s > 0, else std::invalid_argument.
  explicit SessionCache(int idle_timeout_s);

  enum class State { kLive, kRevoked, kIdleExpired };

  // Checks revocation, then idle expiry of session `sid` at unix time `now`. The last
  // activity is the latest of what this node knows and `iat` (the login itself). Idle
  // expired means now - last_seen > idle_timeout_s. On kLive records `now` as last seen
  // (to be flushed by TakeDirtyLastSeen); otherwise changes nothing.
  State Touch(const std::string& sid, int64_t iat, int64_t now);

  // Local logout. `exp` is the session's absolute expiry (claims.exp, unix seconds): the
  // revocation is kept at least until then.
  void Revoke(const std::string& sid, int64_t exp);
  // From the database poll: (sid, expires_at unix seconds) of revoked sessions.
  void ApplyRevocations(const std::vector<std::pair<std::string, int64_t>>& revoked);
  // From the database poll: (sid, last_seen_at unix seconds), other nodes' activity.
  // Max-merged; never revives a revoked session.
  void ApplyLastSeen(const std::vector<std::pair<std::string, int64_t>>& seen);
  // (sid, last seen) of every session that had local activity since the last call.
  std::vector<std::pair<std::string, int64_t>> TakeDirtyLastSeen();

  std::size_t size() const;

  // Evicts live entries not seen for longer than the idle timeout (Touch would report
  // them idle-expired anyway, and without an entry it still does, since iat <= last seen)
  // and revoked entries whose absolute expiry has passed. Call periodically.
  void Sweep(int64_t now);

 private:
  struct Entry {
    int64_t last_seen = INT64_MIN;
    int64_t revoked_until = 0;  // absolute expiry of a revoked session
    bool revoked = false;
    bool dirty = false;
  };
  struct alignas(64) Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> map;
    std::vector<std::string> dirty;  // sids whose Entry::dirty was set, each once
  };
  static constexpr std::size_t kShards = 16;

  Shard& ShardFor(const std::string& sid);
  bool IdleExpired(int64_t last_seen, int64_t now) const;
  void RevokeLocked(Shard& s, const std::string& sid, int64_t exp);

  int64_t idle_timeout_s_;
  std::array<Shard, kShards> shards_;
};

}  // namespace continuum::auth
