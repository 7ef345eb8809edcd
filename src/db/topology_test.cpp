#include "db/topology.hpp"

#include <gtest/gtest.h>

namespace continuum::db {
namespace {

using Role = Topology::Role;
using namespace std::chrono_literals;

Topology Make(int max_lag_ms = 5000) {
  TopologyOptions o;
  o.local_region = "east";
  o.regions = {
      {"east", Secret("host=a")}, {"central", Secret("host=b")}, {"west", Secret("host=c")}};
  o.max_replica_lag_ms = max_lag_ms;
  return Topology(std::move(o));
}

TEST(Topology, NothingKnownMeansThePrimaryPool) {
  auto t = Make();
  EXPECT_EQ(t.ChooseRead(0), Topology::kPrimary);
  EXPECT_FALSE(t.LocalReachable());
  EXPECT_FALSE(t.PrimaryKnown());
}

TEST(Topology, PrefersTheLocalStandbyWithinTheLagBound) {
  auto t = Make();
  auto now = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 1000, {}, now);
  t.Record(0, true, Role::kStandby, 1000, {}, now);
  t.Record(2, true, Role::kStandby, 1000, {}, now);
  EXPECT_EQ(t.ChooseRead(0), 0);
  EXPECT_TRUE(t.LocalReachable());
  EXPECT_TRUE(t.PrimaryKnown());
}

TEST(Topology, ALaggingLocalStandbyGivesWayToAnotherStandbyThenThePrimary) {
  auto t = Make(/*max_lag_ms=*/1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 1000, {}, t0);
  t.Record(0, true, Role::kStandby, 1000, {}, t0);
  t.Record(2, true, Role::kStandby, 1000, {}, t0);
  // The primary moves on; west keeps up, east stays behind for 3 s.
  t.Record(1, true, Role::kPrimary, 5000, {}, t0 + 3s);
  t.Record(2, true, Role::kStandby, 5000, {}, t0 + 3s);
  auto m = t.Snapshot();
  EXPECT_EQ(m[0].lag_ms, 3000);
  EXPECT_EQ(m[2].lag_ms, 0);
  EXPECT_EQ(t.ChooseRead(0), 2);
  // West falls behind too: only the primary is fresh enough.
  t.Record(1, true, Role::kPrimary, 9000, {}, t0 + 6s);
  EXPECT_EQ(t.ChooseRead(0), 1);
}

TEST(Topology, ACutOffRegionSeesOnlyItsOwnStandbyAndCannotServeReads) {
  auto t = Make(/*max_lag_ms=*/1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 1000, {}, t0);
  t.Record(0, true, Role::kStandby, 1000, {}, t0);
  t.Record(2, true, Role::kStandby, 1000, {}, t0);
  EXPECT_TRUE(t.PeerReachable());
  // The other regions stop answering; the local standby still does.
  t.Record(1, false, Role::kUnknown, 0, "timeout", t0 + 500ms);
  t.Record(2, false, Role::kUnknown, 0, "timeout", t0 + 500ms);
  t.Record(0, true, Role::kStandby, 1000, {}, t0 + 500ms);
  EXPECT_FALSE(t.PeerReachable());
  EXPECT_TRUE(t.LocalReachable());
  EXPECT_EQ(t.ChooseRead(0), 0) << "within the lag bound the local standby still serves";
  // Past the lag bound nothing says how stale it is: no read may come from it.
  t.Record(0, true, Role::kStandby, 1000, {}, t0 + 2s);
  EXPECT_EQ(t.ChooseRead(0), Topology::kPrimary);
  EXPECT_FALSE(t.PrimaryKnown());
}

TEST(Topology, ReadYourWritesSkipsStandbysThatHaveNotReplayedTheCommit) {
  auto t = Make();
  auto now = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 2000, {}, now);
  t.Record(0, true, Role::kStandby, 1500, {}, now);
  t.Record(2, true, Role::kStandby, 2000, {}, now);
  EXPECT_EQ(t.ChooseRead(0), 0);     // 1500 is within the time bound
  EXPECT_EQ(t.ChooseRead(1800), 2);  // but has not replayed this session's commit
  EXPECT_EQ(t.ChooseRead(2500), 1);  // nobody but the primary has it yet
  EXPECT_EQ(t.ChooseRead(UINT64_MAX), 1);
}

TEST(Topology, DuringAFailoverStandbysServeReadsOnlyWithinTheLagBound) {
  auto t = Make(/*max_lag_ms=*/1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(0, true, Role::kPrimary, 7000, {}, t0);
  t.Record(1, true, Role::kStandby, 7000, {}, t0);
  t.Record(2, true, Role::kStandby, 7000, {}, t0);
  // The primary (local) dies; nobody leads for ten seconds.
  t.Record(0, false, Role::kUnknown, 0, "refused", t0 + 100ms);
  t.Record(1, true, Role::kStandby, 7000, {}, t0 + 800ms);
  EXPECT_FALSE(t.LocalReachable());
  EXPECT_FALSE(t.PrimaryKnown());
  EXPECT_EQ(t.ChooseRead(0), 1) << "within the bound: it had everything 0.8 s ago";
  t.Record(1, true, Role::kStandby, 7000, {}, t0 + 10s);
  EXPECT_EQ(t.Snapshot()[1].lag_ms, -1) << "no primary for 10 s: the lag is unknown";
  EXPECT_EQ(t.ChooseRead(0), Topology::kPrimary);
  // Central is promoted and writes; west follows.
  t.Record(1, true, Role::kPrimary, 9000, {}, t0 + 11s);
  EXPECT_EQ(t.ChooseRead(0), 1);  // west has not replayed 9000 yet
  t.Record(2, true, Role::kStandby, 9000, {}, t0 + 11s);
  EXPECT_EQ(t.ChooseRead(0), 2);
}

TEST(Topology, ThePrimaryIsGoneAfterTwoTimedOutProbesInARowOrOneDefiniteFailure) {
  auto t = Make();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(t.PrimaryGone()) << "a node starting: nothing probed yet";
  t.Record(0, true, Role::kStandby, 7000, {}, t0);
  t.Record(2, true, Role::kStandby, 7000, {}, t0);
  EXPECT_FALSE(t.PrimaryGone()) << "central not probed yet";
  t.RecordTimeout(1, "timeout", t0);
  EXPECT_FALSE(t.PrimaryGone()) << "central's first probe ran out of time: undecided";
  t.Record(1, true, Role::kPrimary, 7000, {}, t0 + 1s);
  EXPECT_FALSE(t.PrimaryGone()) << "a primary answers";
  // A read's MarkDown is no miss.
  t.MarkDown(1);
  EXPECT_FALSE(t.PrimaryKnown());
  EXPECT_FALSE(t.PrimaryGone());
  // One probe past its budget is a miss...
  t.RecordTimeout(1, "timeout", t0 + 2500ms);
  EXPECT_EQ(t.Snapshot()[1].failed_probes, 1);
  EXPECT_FALSE(t.PrimaryGone());
  // ...one that answers again starts the count over...
  t.Record(1, true, Role::kPrimary, 7100, {}, t0 + 3s);
  EXPECT_EQ(t.Snapshot()[1].failed_probes, 0);
  t.RecordTimeout(1, "timeout", t0 + 4500ms);
  EXPECT_FALSE(t.PrimaryGone());
  // ...and two in a row are a primary gone.
  t.RecordTimeout(1, "timeout", t0 + 7s);
  EXPECT_TRUE(t.PrimaryGone());
  // A promoted standby ends it, while the old primary still misses.
  t.Record(2, true, Role::kPrimary, 7200, {}, t0 + 8s);
  EXPECT_FALSE(t.PrimaryGone());
  t.RecordTimeout(1, "timeout", t0 + 9s);
  EXPECT_FALSE(t.PrimaryGone());
  // The new primary refuses a connection (a definite failure): gone at once, although
  // the old one is still listed as primary (it has missed more than twice).
  t.Record(2, false, Role::kUnknown, 0, "connection refused", t0 + 10s);
  EXPECT_GE(t.Snapshot()[2].failed_probes, Topology::kMissedProbes);
  EXPECT_TRUE(t.PrimaryGone());
  // A primary that answers as a standby (a switchover) is gone at once, with no miss.
  auto s = Make();
  for (int i = 0; i < 3; ++i)
    s.Record(i, true, i == 1 ? Role::kPrimary : Role::kStandby, 1, {}, t0);
  s.Record(1, true, Role::kStandby, 2, {}, t0 + 1s);
  EXPECT_TRUE(s.PrimaryGone());
  // Every member probed and none ever primary (a cluster with no leader yet): gone.
  auto u = Make();
  for (int i = 0; i < 3; ++i) u.Record(i, true, Role::kStandby, 1, {}, t0);
  EXPECT_TRUE(u.PrimaryGone());
  // A node that has reached no database: undecided after one timed-out probe each, gone
  // after two, or after one definite failure each.
  auto v = Make();
  for (int i = 0; i < 3; ++i) v.RecordTimeout(i, "timeout", t0);
  EXPECT_FALSE(v.PrimaryGone());
  for (int i = 0; i < 3; ++i) v.RecordTimeout(i, "timeout", t0 + 3s);
  EXPECT_TRUE(v.PrimaryGone());
  auto w = Make();
  for (int i = 0; i < 3; ++i) w.Record(i, false, Role::kUnknown, 0, "refused", t0);
  EXPECT_TRUE(w.PrimaryGone());
}

TEST(Topology, TheLocalDatabaseServesUntilTwoMissesOrADefiniteFailure) {
  auto t = Make();  // east (index 0) is local
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(t.LocalServing()) << "not probed yet";
  t.RecordTimeout(0, "timeout", t0);
  EXPECT_FALSE(t.LocalServing()) << "never answered";
  t.Record(0, true, Role::kStandby, 1, {}, t0 + 1s);
  EXPECT_TRUE(t.LocalServing());
  t.MarkDown(0);
  EXPECT_FALSE(t.LocalReachable());
  EXPECT_TRUE(t.LocalServing()) << "a read's lost connection is no miss";
  t.RecordTimeout(0, "timeout", t0 + 3s);
  EXPECT_TRUE(t.LocalServing()) << "one miss";
  t.RecordTimeout(0, "timeout", t0 + 5s);
  EXPECT_FALSE(t.LocalServing()) << "two in a row";
  t.Record(0, true, Role::kStandby, 2, {}, t0 + 6s);
  EXPECT_TRUE(t.LocalServing());
  t.Record(0, false, Role::kUnknown, 0, "connection refused", t0 + 7s);
  EXPECT_FALSE(t.LocalServing()) << "a definite failure";
}

// A node cut off from the primary (and only from it) sees its local standby answer with
// the last position it knew, so a lag computed from that would stay 0 forever.
TEST(Topology, APartitionFromThePrimaryMakesTheStandbysLagUnknownAfterTheBound) {
  auto t = Make(/*max_lag_ms=*/1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 5000, {}, t0);
  t.Record(0, true, Role::kStandby, 5000, {}, t0);
  t.Record(1, false, Role::kUnknown, 0, "timeout", t0 + 500ms);
  t.Record(0, true, Role::kStandby, 5000, {}, t0 + 900ms);
  EXPECT_EQ(t.ChooseRead(0), 0);
  EXPECT_EQ(t.Snapshot()[0].lag_ms, 900);
  for (auto at : {1500ms, 3000ms, 60000ms}) {
    t.Record(0, true, Role::kStandby, 5000, {}, t0 + at);
    EXPECT_EQ(t.Snapshot()[0].lag_ms, -1) << at.count();
    EXPECT_EQ(t.ChooseRead(0), Topology::kPrimary) << at.count();
  }
  // The primary is seen again: the standby is fresh again.
  t.Record(1, true, Role::kPrimary, 5000, {}, t0 + 61s);
  EXPECT_EQ(t.ChooseRead(0), 0);
}

// The region's old primary is cut off from the cluster with this node: Patroni demotes
// it (it lost the leader key); it restarts in recovery with nobody to stream from.
TEST(Topology, AnIsolatedOldPrimaryIsNotReadOnceItLostTheLeaderKey) {
  auto t = Make(/*max_lag_ms=*/5000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(0, true, Role::kPrimary, 8000, {}, t0);
  t.Record(1, true, Role::kStandby, 8000, {}, t0);
  EXPECT_EQ(t.ChooseRead(0), 0);
  t.Record(1, false, Role::kUnknown, 0, "timeout", t0 + 1s);
  t.Record(0, true, Role::kStandby, 8000, {}, t0 + 1200ms, /*wal_receiver=*/false);
  EXPECT_TRUE(t.Snapshot()[0].demoted);
  EXPECT_EQ(t.ChooseRead(0), Topology::kPrimary) << "the demoted old primary still served reads";
  // The partition heals: central leads, east streams from it again.
  t.Record(1, true, Role::kPrimary, 9000, {}, t0 + 3s);
  t.Record(0, true, Role::kStandby, 9000, {}, t0 + 3s, /*wal_receiver=*/true);
  EXPECT_FALSE(t.Snapshot()[0].demoted);
  EXPECT_EQ(t.ChooseRead(0), 0);
}

TEST(Topology, AFailedReadMarksTheMemberDownUntilTheNextProbe) {
  auto t = Make();
  auto now = std::chrono::steady_clock::now();
  t.Record(1, true, Role::kPrimary, 100, {}, now);
  t.Record(0, true, Role::kStandby, 100, {}, now);
  t.Record(2, true, Role::kStandby, 100, {}, now);
  t.MarkDown(0);
  EXPECT_EQ(t.ChooseRead(0), 2);
  EXPECT_FALSE(t.LocalReachable());
  t.Record(0, true, Role::kStandby, 100, {}, now);
  EXPECT_EQ(t.ChooseRead(0), 0);
}

TEST(Topology, ALocalPrimaryServesItsRegionsReads) {
  auto t = Make();
  auto now = std::chrono::steady_clock::now();
  t.Record(0, true, Role::kPrimary, 100, {}, now);
  t.Record(1, true, Role::kStandby, 100, {}, now);
  EXPECT_EQ(t.ChooseRead(0), 0);
  EXPECT_EQ(t.ChooseRead(5000), 0);
}

}  // namespace
}  // namespace continuum::db
