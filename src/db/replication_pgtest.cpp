// Replication by data class and the topology probe, against a real primary and its
// real streaming standby (scripts/pg-tmp start + standby), with synchronous
// replication on: a clinical write waits for the standby, an operational write does not.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "core/release.hpp"
#include "db/errors.hpp"
#include "db/pool.hpp"
#include "db/topology.hpp"
#include "support/pg_instance.hpp"

namespace continuum::db {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::PgInstance;

const Query kCreate{"r_create", "CREATE TABLE IF NOT EXISTS r_items (k text PRIMARY KEY)",
                    Access::kWrite};
const Query kClinicalInsert{"r_insert_clinical", "INSERT INTO r_items (k) VALUES ($1)",
                            Access::kWrite, DataClass::kClinical};
const Query kOperationalInsert{"r_insert_operational", "INSERT INTO r_items (k) VALUES ($1)",
                               Access::kWrite, DataClass::kOperational};
const Query kExists{"r_exists", "SELECT count(*) FROM r_items WHERE k = $1", Access::kRead};

std::string Sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "re");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = ::pclose(p);
  if (rc != 0) throw std::runtime_error("command failed (" + std::to_string(rc) + "): " + cmd);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

template <typename T>
T RunCoro(asio::io_context& io, std::function<asio::awaitable<T>()> f) {
  auto fut = asio::co_spawn(io, f(), asio::use_future);
  io.restart();
  io.run();
  return fut.get();
}

// PIDs of the standby's postmaster and its children.
std::vector<pid_t> StandbyPids(const std::string& dir) {
  std::ifstream f(dir + "/data/postmaster.pid");
  pid_t pm = 0;
  f >> pm;
  std::vector<pid_t> pids{pm};
  std::istringstream kids(Sh("pgrep -P " + std::to_string(pm) + " || true"));
  for (pid_t k; kids >> k;) pids.push_back(k);
  return pids;
}

class ReplicationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgInstance::Shared();  // make sure the test binary's own instance exists (watchdog etc.)
    char tmpl[] = "/tmp/continuum-repl-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    pg_tmp_ = std::string(continuum::SourceDir()) + "/scripts/pg-tmp";
    primary_url_ = Sh(pg_tmp_ + " start " + dir_ + "/primary");
    standby_url_ = Sh(pg_tmp_ + " standby " + dir_ + "/primary " + dir_ + "/standby");
    auto& pg = PgInstance::Shared();
    pg.Exec(primary_url_, "ALTER SYSTEM SET synchronous_standby_names = 'standby'");
    pg.Exec(primary_url_, "SELECT pg_reload_conf()");
    for (int i = 0; i < 100; ++i) {
      if (pg.QueryValue(primary_url_,
                        "SELECT sync_state FROM pg_stat_replication WHERE application_name = "
                        "'standby'") == "sync")
        break;
      std::this_thread::sleep_for(100ms);
    }
    // The table every test writes to, here and not in the first test that needs it: a test
    // runs alone too (a shard, a filter, a shuffled order).
    pg.Exec(primary_url_, "CREATE TABLE IF NOT EXISTS r_items (k text PRIMARY KEY)");
  }
  static void TearDownTestSuite() {
    for (pid_t p : StandbyPids(dir_ + "/standby")) ::kill(p, SIGCONT);
    try {
      Sh(pg_tmp_ + " stop " + dir_ + "/standby");
      Sh(pg_tmp_ + " stop " + dir_ + "/primary");
    } catch (...) {
    }
    std::filesystem::remove_all(dir_);
  }
  // SIGSTOPs the standby for the scope: it stays connected but confirms nothing.
  struct Frozen {
    explicit Frozen(const std::string& d) : pids(StandbyPids(d)) {
      for (pid_t p : pids) ::kill(p, SIGSTOP);
    }
    ~Frozen() {
      for (pid_t p : pids) ::kill(p, SIGCONT);
    }
    std::vector<pid_t> pids;
  };

  static inline std::string dir_, pg_tmp_, primary_url_, standby_url_;
  asio::io_context io_;
};

TEST_F(ReplicationTest, TheStandbyIsSynchronous) {
  EXPECT_EQ(PgInstance::Shared().QueryValue(primary_url_,
                                            "SELECT sync_state FROM pg_stat_replication LIMIT 1"),
            "sync");
}

TEST_F(ReplicationTest, ClinicalWritesWaitForTheStandbyOperationalWritesDoNot) {
  Pool pool(io_.get_executor(), PoolOptions{"repl", Secret(primary_url_), 2, 8});
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool.Exec(kCreate, P(), Deadline::After(5s));
    co_await pool.Exec(kClinicalInsert, P("warm-up"), Deadline::After(5s));
    co_return 0;
  });
  {
    Frozen frozen(dir_ + "/standby");
    // Operational data commits locally: done although the standby confirms nothing.
    auto t0 = std::chrono::steady_clock::now();
    RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
      co_await pool.Exec(kOperationalInsert, P("operational"), Deadline::After(3s));
      co_return 0;
    });
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
    // Clinical data waits for the synchronous standby: never acknowledged here.
    t0 = std::chrono::steady_clock::now();
    bool acknowledged = RunCoro<bool>(io_, [&]() -> asio::awaitable<bool> {
      try {
        co_await pool.Exec(kClinicalInsert, P("clinical"), Deadline::After(1500ms));
        co_return true;
      } catch (const Error&) {
        co_return false;
      }
    });
    EXPECT_FALSE(acknowledged) << "a clinical write was acknowledged without the standby";
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1400ms);
  }
  // Once the standby confirms, the waiting commit completes (the primary had it locally).
  auto& pg = PgInstance::Shared();
  std::string n;
  for (int i = 0; i < 100 && n != "1"; ++i) {
    n = pg.QueryValue(standby_url_, "SELECT count(*) FROM r_items WHERE k = 'clinical'");
    if (n != "1") std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(n, "1");
  EXPECT_EQ(pg.QueryValue(standby_url_, "SELECT count(*) FROM r_items WHERE k = 'operational'"),
            "1");
}

TEST_F(ReplicationTest, TheProbeSeesRolesAndLagAndReadsFollowIt) {
  TopologyOptions o;
  o.local_region = "east";
  o.regions = {{"east", Secret(standby_url_)}, {"west", Secret(primary_url_)}};
  o.max_replica_lag_ms = 1000;
  o.probe_interval_ms = 100;
  Topology topo(o);
  std::atomic<bool> stop{false};
  asio::co_spawn(io_, topo.Probe(0, stop), asio::detached);
  asio::co_spawn(io_, topo.Probe(1, stop), asio::detached);
  auto run_for = [&](std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  };
  run_for(600ms);
  auto m = topo.Snapshot();
  EXPECT_EQ(m[0].role, Topology::Role::kStandby);
  EXPECT_EQ(m[1].role, Topology::Role::kPrimary);
  EXPECT_TRUE(topo.LocalReachable());
  EXPECT_EQ(topo.ChooseRead(0), 0) << "a caught-up local standby serves reads";
  {
    // A standby that stops replaying falls behind the lag bound: reads go to the primary.
    Frozen frozen(dir_ + "/standby");
    asio::io_context other;  // io_ runs the probes forever: RunCoro needs its own
    Pool pool(other.get_executor(), PoolOptions{"repl", Secret(primary_url_), 1, 8});
    RunCoro<int>(other, [&]() -> asio::awaitable<int> {
      co_await pool.Exec(kOperationalInsert, P("while-frozen"), Deadline::After(3s));
      co_return 0;
    });
    run_for(1800ms);
    EXPECT_FALSE(topo.LocalReachable()) << "a frozen server does not answer its probe";
    EXPECT_EQ(topo.ChooseRead(0), 1);
    pool.Close();
  }
  run_for(1000ms);
  m = topo.Snapshot();
  EXPECT_TRUE(m[0].reachable);
  // Caught up: its lag is how long ago the primary was last seen (one probe interval).
  EXPECT_GE(m[0].lag_ms, 0) << "caught up again after SIGCONT";
  EXPECT_LT(m[0].lag_ms, 500) << "caught up again after SIGCONT";
  EXPECT_EQ(topo.ChooseRead(0), 0);
  // Read-your-writes: a position beyond the standby's sends that read to the primary.
  EXPECT_EQ(topo.ChooseRead(m[1].replay_lsn + 1'000'000), 1);
  stop = true;
  run_for(500ms);
}

TEST_F(ReplicationTest, AProbeWaitsForASlowConnectInsteadOfStartingAnother) {
  // A connect that takes longer than a probe round (a loaded host; here a frozen server,
  // whose kernel still completes the TCP handshake and takes the startup packet) goes on
  // while the rounds that wait for it count misses: it is not given up and started again
  // every round, which would waste the server's work and keep a loaded host loaded.
  TopologyOptions o;
  o.local_region = "east";
  o.regions = {{"east", Secret(standby_url_)}};
  o.probe_interval_ms = 100;  // a round's budget: 300 ms
  Topology topo(o);
  std::atomic<bool> stop{false};
  auto run_for = [&](std::chrono::milliseconds d) {
    io_.restart();
    io_.run_for(d);
  };
  {
    Frozen frozen(dir_ + "/standby");
    asio::co_spawn(io_, topo.Probe(0, stop), asio::detached);
    run_for(1500ms);
    auto m = topo.Snapshot();
    EXPECT_FALSE(m[0].reachable);
    EXPECT_GE(m[0].failed_probes, 2) << "each round that waited is a miss";
    EXPECT_FALSE(topo.LocalServing());
    EXPECT_EQ(m[0].connects, 1u) << "one connect, waited for by every round";
  }
  run_for(1500ms);
  auto m = topo.Snapshot();
  EXPECT_TRUE(m[0].reachable) << m[0].error;
  EXPECT_EQ(m[0].role, Topology::Role::kStandby);
  EXPECT_EQ(m[0].connects, 1u) << "the first connect ended once the server woke";
  EXPECT_TRUE(topo.LocalServing());
  stop = true;
  run_for(500ms);
}

TEST_F(ReplicationTest, CommitLsnIsReportedAfterAWrite) {
  Pool pool(io_.get_executor(), PoolOptions{"repl", Secret(primary_url_), 1, 8});
  uint64_t lsn = RunCoro<uint64_t>(io_, [&]() -> asio::awaitable<uint64_t> {
    uint64_t pos = 0;
    BatchOptions bo;
    bo.commit_lsn = &pos;
    std::vector<Statement> s;
    s.push_back(Statement{&kClinicalInsert, P("lsn-check")});
    co_await pool.Batch(std::move(s), Deadline::After(5s), bo);
    co_return pos;
  });
  EXPECT_GT(lsn, 0u);
  EXPECT_NE(lsn, UINT64_MAX);
  auto& pg = PgInstance::Shared();
  // Once the standby has replayed that position, it has the row.
  for (int i = 0; i < 50; ++i) {
    auto replayed =
        pg.QueryValue(standby_url_, "SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::text");
    if (std::stoull(replayed) >= lsn) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(pg.QueryValue(standby_url_, "SELECT count(*) FROM r_items WHERE k = 'lsn-check'"), "1");
}

// Patroni's non-strict synchronous mode leaves synchronous_standby_names empty for a few
// seconds after a failover (and empties it when the sync standby is lost): PostgreSQL
// then acknowledges commits that only the primary holds. A pool that requires a sync
// standby holds a clinical commit until a standby is named and has confirmed it; an
// operational one is not held (issue 10, item 9).
TEST_F(ReplicationTest, AClinicalCommitIsHeldUntilASyncStandbyIsNamed) {
  auto& pg = PgInstance::Shared();
  auto set_sync = [&](const std::string& names) {
    pg.Exec(primary_url_, "ALTER SYSTEM SET synchronous_standby_names = '" + names + "'");
    pg.Exec(primary_url_, "SELECT pg_reload_conf()");
    for (int i = 0; i < 100; ++i) {
      if (pg.QueryValue(primary_url_, "SELECT current_setting('synchronous_standby_names')") ==
          names)
        break;
      std::this_thread::sleep_for(20ms);
    }
  };
  struct Restore {
    std::function<void()> f;
    ~Restore() { f(); }
  } restore{[&] { set_sync("standby"); }};
  PoolOptions po{"repl", Secret(primary_url_), 2, 8};
  po.require_sync_standby = true;
  Pool pool(io_.get_executor(), po);
  RunCoro<int>(io_, [&]() -> asio::awaitable<int> {
    co_await pool.Exec(kCreate, P(), Deadline::After(5s));
    co_await pool.Exec(kClinicalInsert, P("held-warm-up"), Deadline::After(5s));
    co_return 0;
  });
  set_sync("");  // the standby still streams, but nobody waits for it
  const uint64_t held_before = Connection::held_commits();
  auto attempt = [&](const Query& q, const std::string& k, std::chrono::milliseconds d) {
    return RunCoro<std::string>(io_, [&]() -> asio::awaitable<std::string> {
      try {
        co_await pool.Exec(q, P(k), Deadline::After(d));
        co_return "acknowledged";
      } catch (const SyncStandbyUnavailable&) {
        co_return "held";
      } catch (const Error& e) {
        co_return std::string("error: ") + e.what();
      }
    });
  };
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(attempt(kOperationalInsert, "op-no-sync", 3000ms), "acknowledged");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  EXPECT_EQ(attempt(kClinicalInsert, "clinical-no-sync", 1500ms), "held")
      << "a clinical commit was acknowledged while no synchronous standby was named";
  EXPECT_GT(Connection::held_commits(), held_before);
  // Patroni names the standby again 1 s later: the waiting write is acknowledged then.
  std::thread patroni([&] {
    std::this_thread::sleep_for(1000ms);
    set_sync("standby");
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(attempt(kClinicalInsert, "clinical-sync-again", 8000ms), "acknowledged");
  auto waited = std::chrono::steady_clock::now() - t0;
  patroni.join();
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 4000ms);
  // And the standby has it.
  EXPECT_EQ(
      pg.QueryValue(standby_url_, "SELECT count(*) FROM r_items WHERE k = 'clinical-sync-again'"),
      "1");
}

}  // namespace
}  // namespace continuum::db
