// Where reads may go. A node knows every region's PostgreSQL; a probe loop asks each
// one, every probe interval, whether it is a primary or a standby and how far it has
// replayed the WAL. From that the node picks, per read:
//   1. its own region's server, when it is the primary or a standby within the lag bound;
//   2. else another region's standby within the lag bound (in configured order);
//   3. else the primary (found by libpq over the multi-host write URL).
// A read that must see a given commit (read-your-writes) passes that commit's LSN: a
// standby that has not replayed it is skipped. (With no primary in sight and a standby
// that has not replayed it yet, the caller waits, within its deadline, for the standby's
// next probe or for a primary; with the primary gone (PrimaryGone) and no standby to
// serve it, a read waits for the probes to find a primary, a promoted standby, keeping a
// second of its deadline for the write pool: portal/context.cpp, ReadNearest.)
//
// Lag is measured in time, not bytes: the probe keeps a short history of the primary's
// WAL position, and a standby's lag is how long ago the primary was at the position the
// standby has now replayed — and at least how long ago this node last saw a primary: a
// standby that had everything then may have missed whatever came since.
//
// Partitions (issue 10, item 11). A node that cannot reach the primary cannot tell a
// failover (no commits) from a partition (commits it cannot see), so:
//   - once no primary has been seen for longer than the lag bound, every standby's lag is
//     unknown (-1) and none serves reads: they wait (within the request deadline) for a
//     primary, on the probes (PrimaryGone) and then in the write pool. Within the bound,
//     standbys keep serving, so the first seconds of a failover cost no reads.
//   - a server seen as primary that is now in recovery with no WAL receiver has lost its
//     leader key (Patroni demoted it: the isolated old primary). It is not read from until
//     it streams from the new primary again: it may hold WAL the new timeline never got
//     (local-commit batches) and it follows nobody.
//
// Thread-safe: shards read the state under a mutex (a few loads per request).
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "core/secret.hpp"

namespace continuum::db {

struct RegionDatabase {
  std::string name;  // region name
  Secret url;        // that region's PostgreSQL (a single host)
};

struct TopologyOptions {
  std::string local_region;
  std::vector<RegionDatabase> regions;  // preference order; the local region first
  int max_replica_lag_ms = 5000;
  int probe_interval_ms = 500;
};

class Topology {
 public:
  enum class Role { kUnknown, kPrimary, kStandby };
  struct Member {
    std::string name;
    bool local = false;
    bool reachable = false;
    Role role = Role::kUnknown;
    uint64_t replay_lsn = 0;  // standby: replayed; primary: current WAL position
    int64_t lag_ms = -1;      // standby's estimated lag; -1 when unknown
    int64_t checked_unix_ms = 0;
    int failed_probes = 0;      // misses in a row (PrimaryGone); 0 after an answer
    bool wal_receiver = false;  // standby: streams from a primary right now
    bool demoted = false;       // was primary, now in recovery with no WAL receiver
    std::string error;          // last probe failure, for /readyz
    uint64_t connects = 0;      // connects the probe started (a slow one is waited for)
  };
  static constexpr int kPrimary = -1;  // "use the write pool"

  explicit Topology(TopologyOptions options);

  const TopologyOptions& options() const { return options_; }
  std::size_t size() const { return options_.regions.size(); }

  // The member index to read from, or kPrimary. `min_lsn` = 0 when any state will do.
  int ChooseRead(uint64_t min_lsn) const;
  // Passive health: a read on member `i` lost its connection. It is avoided until the
  // next successful probe.
  void MarkDown(int i);
  // True when this node's own region's database answers (as primary or standby).
  bool LocalReachable() const;
  // True when some member answers as primary.
  bool PrimaryKnown() const;
  // True when the primary is gone, not merely missed: every member has been probed, none
  // is still undecided (never answered, fewer than kMissedProbes misses), and none is a
  // primary (by its last answer) that answers now or has missed fewer than kMissedProbes
  // probes in a row. A probe that runs out of its budget (twice the probe interval, at
  // least 300 ms; or the TCP user timeout, when shorter) is one miss: on a loaded host that happens
  // while the primary is fine. A probe that fails sooner (refused, reset, an error) is a definite
  // failure and counts as kMissedProbes at once, as does a primary that answers as a standby (a
  // switchover). A read's MarkDown is no miss. While the primary is gone, writes are
  // refused as read-only (portal/access.cpp), /readyz says so, and reads with no standby
  // to serve them wait for the probes to find a primary (portal/context.cpp,
  // ReadNearest). Cost: a primary lost to dropped packets is called gone after two
  // budgets and an interval (about 2.5 s at the default 500 ms), not one (1 s); writes
  // sent meanwhile go to the write pool and wait there.
  static constexpr int kMissedProbes = 2;
  bool PrimaryGone() const;
  // /readyz's "this node's own database answers": it answers, or it has answered and has
  // only missed fewer than kMissedProbes probes since (a timed-out probe on a loaded host
  // does not take the node out of the edge's rotation).
  bool LocalServing() const;
  // True when the last probe of some other region's database answered: false when this
  // region is cut off from the others (a partition) or they are all down.
  bool PeerReachable() const;
  std::vector<Member> Snapshot() const;

  // The probe loop for member `i` (co_spawn one per member); ends when `stop` is set.
  boost::asio::awaitable<void> Probe(int i, const std::atomic<bool>& stop);

  // For tests: record a probe result as the loop would.
  void Record(int i, bool reachable, Role role, uint64_t lsn, const std::string& error = {},
              std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now(),
              bool wal_receiver = true);
  // For tests: a probe that ran out of its budget (one miss; Record with reachable = false
  // is a definite failure).
  void RecordTimeout(int i, const std::string& error = {},
                     std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  // Record's body: a failure adds `misses` to the member's count, under the same lock
  // as the rest of the result (a reader never sees a half-recorded probe).
  void Update(int i, bool reachable, Role role, uint64_t lsn, const std::string& error,
              std::chrono::steady_clock::time_point now, bool wal_receiver, int misses);
  bool UsableLocked(const Member& m, uint64_t min_lsn) const;
  int64_t LagLocked(uint64_t replayed, std::chrono::steady_clock::time_point now) const;

  TopologyOptions options_;
  mutable std::mutex mu_;
  std::vector<Member> members_;
  // (when, primary WAL position), oldest first; a few minutes at most.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> primary_history_;
};

}  // namespace continuum::db
