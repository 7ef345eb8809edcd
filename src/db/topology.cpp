#include "db/topology.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdlib>

#include "core/log.hpp"
#include "db/errors.hpp"
#include "db/pool.hpp"

namespace continuum::db {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {
const Query kProbe{"topology_probe",
                   "SELECT pg_is_in_recovery(), (COALESCE(CASE WHEN pg_is_in_recovery() THEN "
                   "pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, '0/0') - "
                   "'0/0'::pg_lsn)::text, EXISTS (SELECT 1 FROM pg_stat_wal_receiver)",
                   Access::kRead, DataClass::kOperational};

// A probe's connect in flight. It runs in a coroutine of its own, with a deadline of its
// own, and outlives the probe rounds that wait for it: a connect on a loaded host (a fork
// and a SCRAM exchange that took 0.3-1 s with two clusters starting on two cores) is not
// given up at the round's budget and started afresh a moment later. That would waste
// the server's work on every round and keep the host loaded: it did, for over two
// minutes, with six nodes probing three regions. Single-threaded: the probes and this
// share one executor.
struct ProbeConnect {
  explicit ProbeConnect(asio::any_io_executor ex)
      : conn(std::make_shared<Connection>(ex)), wake(ex) {}
  std::shared_ptr<Connection> conn;
  asio::steady_timer wake;  // cancelled when the connect ends
  bool done = false;
  std::exception_ptr error;
};

asio::awaitable<void> RunProbeConnect(std::shared_ptr<ProbeConnect> c, std::string url,
                                      Deadline deadline) {
  try {
    co_await c->conn->Connect(url, deadline);
  } catch (...) {
    c->error = std::current_exception();
  }
  c->done = true;
  c->wake.cancel();
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Topology::Topology(TopologyOptions options) : options_(std::move(options)) {
  for (const auto& r : options_.regions) {
    Member m;
    m.name = r.name;
    m.local = r.name == options_.local_region;
    members_.push_back(m);
  }
}

int64_t Topology::LagLocked(uint64_t replayed, Clock::time_point now) const {
  if (primary_history_.empty()) return -1;
  // How long since any primary was seen: nothing is known about what came after.
  auto since =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - primary_history_.back().first)
          .count();
  if (since > options_.max_replica_lag_ms) return -1;
  if (replayed >= primary_history_.back().second) return std::max<int64_t>(0, since);
  // The newest moment at which the primary had nothing the standby lacks.
  for (auto it = primary_history_.rbegin(); it != primary_history_.rend(); ++it)
    if (it->second <= replayed)
      return std::chrono::duration_cast<std::chrono::milliseconds>(now - it->first).count();
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - primary_history_.front().first)
      .count();
}

bool Topology::UsableLocked(const Member& m, uint64_t min_lsn) const {
  if (!m.reachable || m.demoted) return false;
  if (m.role == Role::kPrimary) return true;
  if (m.role != Role::kStandby) return false;
  return m.lag_ms >= 0 && m.lag_ms <= options_.max_replica_lag_ms && m.replay_lsn >= min_lsn;
}

int Topology::ChooseRead(uint64_t min_lsn) const {
  std::lock_guard lock(mu_);
  const int n = static_cast<int>(members_.size());
  for (int i = 0; i < n; ++i)
    if (members_[i].local && UsableLocked(members_[i], min_lsn)) return i;
  for (int i = 0; i < n; ++i)
    if (!members_[i].local && members_[i].role == Role::kStandby &&
        UsableLocked(members_[i], min_lsn))
      return i;
  for (int i = 0; i < n; ++i)
    if (members_[i].reachable && members_[i].role == Role::kPrimary) return i;
  return kPrimary;
}

void Topology::MarkDown(int i) {
  std::lock_guard lock(mu_);
  if (i >= 0 && i < static_cast<int>(members_.size())) {
    members_[i].reachable = false;
    members_[i].error = "a read lost its connection";
  }
}

bool Topology::LocalReachable() const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_)
    if (m.local) return m.reachable;
  return false;
}

bool Topology::PrimaryKnown() const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_)
    if (m.reachable && m.role == Role::kPrimary) return true;
  return false;
}

bool Topology::PrimaryGone() const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_) {
    if (m.checked_unix_ms == 0) return false;  // not probed yet (a node starting)
    // Never answered, and only missed so far (a first probe past its budget): undecided.
    if (m.role == Role::kUnknown && m.failed_probes < kMissedProbes) return false;
  }
  for (const auto& m : members_)
    if (m.role == Role::kPrimary && (m.reachable || m.failed_probes < kMissedProbes)) return false;
  return true;
}

bool Topology::LocalServing() const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_)
    if (m.local)
      return m.reachable || (m.role != Role::kUnknown && m.failed_probes < kMissedProbes);
  return false;
}

void Topology::RecordTimeout(int i, const std::string& error, Clock::time_point now) {
  Update(i, false, Role::kUnknown, 0, error, now, false, 1);  // one miss, not a definite failure
}

bool Topology::PeerReachable() const {
  std::lock_guard lock(mu_);
  for (const auto& m : members_)
    if (!m.local && m.reachable) return true;
  return false;
}

std::vector<Topology::Member> Topology::Snapshot() const {
  std::lock_guard lock(mu_);
  return members_;
}

void Topology::Record(int i, bool reachable, Role role, uint64_t lsn, const std::string& error,
                      Clock::time_point now, bool wal_receiver) {
  Update(i, reachable, role, lsn, error, now, wal_receiver, kMissedProbes);
}

void Topology::Update(int i, bool reachable, Role role, uint64_t lsn, const std::string& error,
                      Clock::time_point now, bool wal_receiver, int misses) {
  std::lock_guard lock(mu_);
  Member& m = members_.at(i);
  m.reachable = reachable;
  m.checked_unix_ms = UnixMs();
  m.error = error;
  // A probe that failed before its budget ran out (refused, reset, an error) is a
  // definite answer: it counts as kMissedProbes misses. One that ran out of time counts
  // as one (RecordTimeout). Capped, so that years of misses cannot overflow.
  m.failed_probes = reachable ? 0 : std::min(kMissedProbes + 100, m.failed_probes + misses);
  // Every standby's lag moves with time (and with the primary) even between its own
  // probes: recomputed at every probe of any member.
  auto refresh = [&] {
    for (auto& o : members_)
      if (o.role == Role::kStandby && o.reachable) o.lag_ms = LagLocked(o.replay_lsn, now);
  };
  if (!reachable) {
    refresh();
    return;
  }
  if (role == Role::kStandby && !wal_receiver && m.role == Role::kPrimary) m.demoted = true;
  if (role == Role::kPrimary || wal_receiver) m.demoted = false;
  m.wal_receiver = role == Role::kStandby && wal_receiver;
  m.role = role;
  m.replay_lsn = lsn;
  if (role == Role::kPrimary) {
    if (primary_history_.empty() || lsn >= primary_history_.back().second)
      primary_history_.emplace_back(now, lsn);
    auto keep = std::chrono::milliseconds(std::max(60000, 4 * options_.max_replica_lag_ms));
    while (primary_history_.size() > 2 && now - primary_history_.front().first > keep)
      primary_history_.pop_front();
    m.lag_ms = 0;
  }
  refresh();
}

asio::awaitable<void> Topology::Probe(int i, const std::atomic<bool>& stop) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  std::shared_ptr<Connection> conn;
  const auto interval = std::chrono::milliseconds(std::max(50, options_.probe_interval_ms));
  const auto budget = std::chrono::milliseconds(std::max(300, 2 * options_.probe_interval_ms));
  const auto out_of_time =
      std::min<Clock::duration>(budget, std::chrono::milliseconds(kTcpUserTimeoutMs));
  // A connect may take longer than a round: it goes on (ProbeConnect) while the rounds
  // that wait for it each count a miss. A SYN that is never answered fails the socket
  // after kTcpUserTimeoutMs anyway; this bounds a host that accepts and then stalls.
  const auto connect_budget = std::max(budget, std::chrono::milliseconds(kTcpUserTimeoutMs + 2000));
  std::shared_ptr<ProbeConnect> connecting;
  bool was_reachable = true;
  while (!stop.load()) {
    const auto started = Clock::now();
    auto deadline = Deadline::After(budget);
    try {
      if (!conn || conn->broken()) {
        conn.reset();
        if (!connecting) {
          {
            std::lock_guard lock(mu_);
            ++members_.at(i).connects;
          }
          connecting = std::make_shared<ProbeConnect>(ex);
          asio::co_spawn(ex,
                         RunProbeConnect(connecting, options_.regions[i].url.reveal(),
                                         Deadline::After(connect_budget)),
                         asio::detached);
        }
        if (!connecting->done) {
          connecting->wake.expires_at(deadline.at());
          co_await connecting->wake.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        if (!connecting->done)
          throw DeadlineExceeded("connecting to the database took longer than the probe's budget");
        auto c = std::move(connecting);
        if (c->error) std::rethrow_exception(c->error);
        conn = std::move(c->conn);
      }
      std::vector<Statement> s;
      s.push_back(Statement{&kProbe, {}});
      auto r = co_await conn->Run(s, deadline);
      bool standby = r[0].get_bool(0, 0);
      uint64_t lsn = std::strtoull(r[0].str(0, 1).c_str(), nullptr, 10);
      Record(i, true, standby ? Role::kStandby : Role::kPrimary, lsn, {}, Clock::now(),
             r[0].get_bool(0, 2));
      if (!was_reachable)
        log::Info("database of region {} answers again ({})", options_.regions[i].name,
                  standby ? "standby" : "primary");
      was_reachable = true;
    } catch (const std::exception& e) {
      conn.reset();
      // Out of time (a dropped packet, or a host too busy to answer within the budget; the
      // kernel's TCP user timeout, when it is the shorter) is a miss; anything sooner
      // (refused, reset, an error) is a definite failure.
      if (Clock::now() - started >= out_of_time - std::chrono::milliseconds(20))
        RecordTimeout(i, e.what());
      else
        Record(i, false, Role::kUnknown, 0, e.what());
      if (was_reachable)
        log::Warn("database of region {} unreachable: {}", options_.regions[i].name, e.what());
      was_reachable = false;
    }
    timer.expires_after(interval);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace continuum::db
