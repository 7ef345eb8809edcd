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

TEST(Topology, DuringAFailoverStandbysThatHadEverythingKeepServingReads) {
  auto t = Make(/*max_lag_ms=*/1000);
  auto t0 = std::chrono::steady_clock::now();
  t.Record(0, true, Role::kPrimary, 7000, {}, t0);
  t.Record(1, true, Role::kStandby, 7000, {}, t0);
  t.Record(2, true, Role::kStandby, 7000, {}, t0);
  // The primary (local) dies; for ten seconds nobody leads.
  t.Record(0, false, Role::kUnknown, 0, "refused", t0 + 1s);
  t.Record(1, true, Role::kStandby, 7000, {}, t0 + 10s);
  EXPECT_FALSE(t.LocalReachable());
  EXPECT_FALSE(t.PrimaryKnown());
  EXPECT_EQ(t.ChooseRead(0), 1);
  // Central is promoted and writes; west follows.
  t.Record(1, true, Role::kPrimary, 9000, {}, t0 + 11s);
  EXPECT_EQ(t.ChooseRead(0), 1);  // west has not replayed 9000 yet but is 1 s behind at most
  t.Record(2, true, Role::kStandby, 9000, {}, t0 + 11s);
  EXPECT_EQ(t.ChooseRead(0), 2);
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
