#include "resilience/critical_first.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace continuum::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs what is ready (restarted first: a context that ran out of work stays stopped).
void Poll(asio::io_context& io) {
  io.restart();
  io.poll();
}

// Starts Enter(tier) on the io_context; `result` is set to true when it returns (admitted).
void Ask(asio::io_context& io, CriticalFirst& g, Tier tier, Deadline d, std::optional<bool>& result,
         std::vector<std::string>* order = nullptr, std::string name = {}) {
  asio::co_spawn(
      io,
      [&g, tier, d, &result, order, name]() -> asio::awaitable<void> {
        co_await g.Enter(tier, d);
        result = true;
        if (order) order->push_back(name);
      },
      asio::detached);
}

// Keeps the io_context's thread busy for `total`, in slices of `slice` (a saturated CPU:
// the event loop runs every due timer up to a slice late). With `gate`, each slice is a
// critical request served (the critical tier moves).
void BusyFor(asio::io_context& io, std::chrono::milliseconds total, std::chrono::milliseconds slice,
             bool& done, CriticalFirst* gate = nullptr) {
  asio::co_spawn(
      io,
      [&io, total, slice, &done, gate]() -> asio::awaitable<void> {
        const auto end = std::chrono::steady_clock::now() + total;
        while (std::chrono::steady_clock::now() < end) {
          if (gate) gate->CriticalBegin();
          std::this_thread::sleep_for(slice);
          if (gate) gate->CriticalEnd(true);
          co_await asio::post(io, asio::use_awaitable);
        }
        done = true;
      },
      asio::detached);
}

TEST(CriticalFirst, WithoutCriticalWorkEveryTierStartsAtOnce) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  std::vector<std::optional<bool>> r(5);
  for (auto& x : r) Ask(io, g, Tier::kHigh, Deadline::After(1s), x);
  io.run();
  for (auto& x : r) EXPECT_EQ(x, true);
  EXPECT_EQ(g.active(Tier::kHigh), 5);
  EXPECT_EQ(g.stats()[static_cast<int>(Tier::kHigh)].waited.load(), 0u);
}

TEST(CriticalFirst, WhileCriticalRunsEachLowerTierGetsItsLimitAndTheRestWaitInOrder) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 2);
  g.CriticalBegin();
  std::vector<std::string> order;
  std::optional<bool> h1, h2, h3, h4, m1, l1;
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h1, &order, "h1");
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h2, &order, "h2");
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h3, &order, "h3");
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h4, &order, "h4");
  Ask(io, g, Tier::kMedium, Deadline::After(10s), m1, &order, "m1");  // its own limit
  Ask(io, g, Tier::kLow, Deadline::After(10s), l1, &order, "l1");
  Poll(io);
  EXPECT_EQ(order, (std::vector<std::string>{"h1", "h2", "m1", "l1"}));
  EXPECT_EQ(g.active(Tier::kHigh), 2);
  EXPECT_EQ(g.waiting(Tier::kHigh), 2);
  // One high request ends: the oldest waiter takes its slot, not a newcomer.
  g.Leave(Tier::kHigh);
  std::optional<bool> h5;
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h5, &order, "h5");
  Poll(io);
  EXPECT_EQ(order.back(), "h3");
  EXPECT_FALSE(h4.has_value());
  EXPECT_FALSE(h5.has_value());
  EXPECT_EQ(g.active(Tier::kHigh), 2);
  // The critical work ends: everything waiting goes at once.
  g.CriticalEnd();
  Poll(io);
  EXPECT_EQ(h4, true);
  EXPECT_EQ(h5, true);
  EXPECT_EQ(g.active(Tier::kHigh), 4);
  EXPECT_EQ(g.waiting(Tier::kHigh), 0);
  const auto& st = g.stats()[static_cast<int>(Tier::kHigh)];
  EXPECT_EQ(st.waited.load(), 3u);  // h3, h4, h5
  EXPECT_EQ(st.overdue.load(), 0u);
  EXPECT_EQ(st.waiting.load(), 0);
}

TEST(CriticalFirst, AHungTierHoldsOnlyItsOwnSlots) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  g.CriticalBegin();
  std::optional<bool> m1, m2, h1, l1;
  Ask(io, g, Tier::kMedium, Deadline::After(10s), m1);  // never leaves (a hung backend)
  Ask(io, g, Tier::kMedium, Deadline::After(10s), m2);
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h1);
  Ask(io, g, Tier::kLow, Deadline::After(10s), l1);
  Poll(io);
  EXPECT_EQ(m1, true);
  EXPECT_FALSE(m2.has_value());
  EXPECT_EQ(h1, true);
  EXPECT_EQ(l1, true);
  g.Leave(Tier::kHigh);
  g.Leave(Tier::kLow);
  Poll(io);
  EXPECT_FALSE(m2.has_value());  // only medium's own slot frees medium's waiter
  g.Leave(Tier::kMedium);
  Poll(io);
  EXPECT_EQ(m2, true);
}

TEST(CriticalFirst, AWaiterGoesAheadAtHalfItsTimeToTheDeadline) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  g.CriticalBegin();
  std::optional<bool> a, b, c;
  Ask(io, g, Tier::kLow, Deadline::After(10s), a);
  Ask(io, g, Tier::kLow, Deadline::After(60ms), b);
  Ask(io, g, Tier::kLow, Deadline::After(10s), c);
  auto t0 = std::chrono::steady_clock::now();
  while (!b.has_value() && std::chrono::steady_clock::now() - t0 < 5s) io.run_one_for(100ms);
  EXPECT_EQ(a, true);
  EXPECT_EQ(b, true);  // overdue: it keeps the other half for its own work
  EXPECT_FALSE(c.has_value());
  EXPECT_EQ(g.waiting(Tier::kLow), 1);
  EXPECT_EQ(g.active(Tier::kLow), 2);
  const auto& st = g.stats()[static_cast<int>(Tier::kLow)];
  EXPECT_EQ(st.waited.load(), 2u);
  EXPECT_EQ(st.overdue.load(), 1u);
  EXPECT_GE(st.wait_us.load(), 30000u);
  // The overdue request counts while it works: a's end leaves the tier at its limit.
  g.Leave(Tier::kLow);
  Poll(io);
  EXPECT_FALSE(c.has_value());
  g.Leave(Tier::kLow);
  Poll(io);
  EXPECT_EQ(c, true);
  EXPECT_EQ(g.active(Tier::kLow), 1);
  EXPECT_EQ(st.overdue.load(), 1u);
}

TEST(CriticalFirst, AnExpiredDeadlineGoesAheadAtOnce) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  g.CriticalBegin();
  std::optional<bool> a, b;
  Ask(io, g, Tier::kHigh, Deadline::After(10s), a);
  Ask(io, g, Tier::kHigh, Deadline(Deadline::Clock::now() - 1ms), b);
  Poll(io);
  io.run_for(50ms);
  EXPECT_EQ(a, true);
  EXPECT_EQ(b, true);
  EXPECT_EQ(g.stats()[static_cast<int>(Tier::kHigh)].overdue.load(), 1u);
}

TEST(CriticalFirst, CriticalRequestsCountUntilTheLastEnds) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  g.CriticalBegin();
  g.CriticalBegin();
  std::optional<bool> a, b;
  Ask(io, g, Tier::kHigh, Deadline::After(10s), a);
  Ask(io, g, Tier::kHigh, Deadline::After(10s), b);
  Poll(io);
  EXPECT_FALSE(b.has_value());
  g.CriticalEnd();
  Poll(io);
  EXPECT_FALSE(b.has_value());  // one critical request still runs
  g.CriticalEnd();
  Poll(io);
  EXPECT_EQ(b, true);
  EXPECT_EQ(g.critical_in_flight(), 0);
}

TEST(CriticalFirst, BelowTheThresholdNothingWaits) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1, 3);
  g.CriticalBegin();
  g.CriticalBegin();  // two critical requests: no pressure yet
  std::optional<bool> a, b, c, d;
  Ask(io, g, Tier::kMedium, Deadline::After(10s), a);
  Ask(io, g, Tier::kMedium, Deadline::After(10s), b);
  Poll(io);
  EXPECT_EQ(a, true);
  EXPECT_EQ(b, true);
  g.CriticalBegin();  // the third: the other tiers now yield (2 medium already at work)
  Ask(io, g, Tier::kMedium, Deadline::After(10s), c);
  Ask(io, g, Tier::kMedium, Deadline::After(10s), d);
  Poll(io);
  EXPECT_FALSE(c.has_value());
  g.Leave(Tier::kMedium);
  Poll(io);
  EXPECT_FALSE(c.has_value());  // still one medium at work, its limit
  g.CriticalEnd();              // back below the threshold: both go
  Poll(io);
  EXPECT_EQ(c, true);
  EXPECT_EQ(d, true);
  EXPECT_EQ(g.active(Tier::kMedium), 3);
}

TEST(CriticalFirst, ZeroTurnsItOff) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 0);
  g.CriticalBegin();
  std::vector<std::optional<bool>> r(10);
  for (auto& x : r) Ask(io, g, Tier::kMedium, Deadline::After(1s), x);
  Poll(io);
  for (auto& x : r) EXPECT_EQ(x, true);
}

// With a lag limit, the threshold alone does not engage the gate: critical requests that
// wait on their own database leave the CPU idle, and the other tiers go as they come.
TEST(CriticalFirst, CriticalWorkWaitingWithTheCpuIdleHoldsNothingBack) {
  asio::io_context io;
  // (A limit an idle loop never reaches, even on a loaded test machine.)
  CriticalFirst g(io.get_executor(),
                  {.lower_limit = 1, .threshold = 2, .lag_limit = 50ms, .probe_period = 1ms});
  for (int i = 0; i < 5; ++i) g.CriticalBegin();  // a stuck critical pool
  io.run_for(30ms);
  EXPECT_FALSE(g.engaged());
  EXPECT_GE(g.probes(), 5u);
  std::vector<std::optional<bool>> r(4);
  for (auto& x : r) Ask(io, g, Tier::kHigh, Deadline::After(10s), x);
  Poll(io);
  for (auto& x : r) EXPECT_EQ(x, true);
  EXPECT_EQ(g.stats()[static_cast<int>(Tier::kHigh)].waited.load(), 0u);
}

// A saturated event loop (due timers run late) with critical work at its threshold engages
// the gate; once the loop catches up it disengages and the waiters go.
TEST(CriticalFirst, ASaturatedEventLoopEngagesItAndCatchingUpReleasesIt) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(),
                  {.lower_limit = 1, .threshold = 1, .lag_limit = 2ms, .probe_period = 1ms});
  g.CriticalBegin();
  bool busy_done = false;
  BusyFor(io, 300ms, 5ms, busy_done, &g);
  auto t0 = std::chrono::steady_clock::now();
  while (!g.engaged() && std::chrono::steady_clock::now() - t0 < 250ms) io.run_one_for(10ms);
  ASSERT_TRUE(g.engaged()) << "probes " << g.probes() << ", late " << g.late_probes();
  EXPECT_EQ(g.engaged_now(), 1);
  std::optional<bool> h1, h2;
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h1);
  Ask(io, g, Tier::kHigh, Deadline::After(10s), h2);
  while (!(h1.has_value() && (h2.has_value() || g.waiting(Tier::kHigh) == 1)) &&
         std::chrono::steady_clock::now() - t0 < 250ms)
    io.run_one_for(10ms);
  EXPECT_EQ(h1, true);
  EXPECT_FALSE(h2.has_value());  // its turn has not come: the loop is still busy
  EXPECT_EQ(g.waiting(Tier::kHigh), 1);
  // The busy work ends; the next probes find the loop on time and release the waiter.
  while (!h2.has_value() && std::chrono::steady_clock::now() - t0 < 3s) io.run_one_for(10ms);
  EXPECT_TRUE(busy_done);
  EXPECT_EQ(h2, true);
  EXPECT_FALSE(g.engaged());
  EXPECT_EQ(g.stats()[static_cast<int>(Tier::kHigh)].overdue.load(), 0u);
  EXPECT_GT(g.late_probes(), 0u);
}

// The review's case with a busy CPU: the loop runs late (the lower tiers' own work, other
// processes) while the critical requests wait on their database and none is served. More
// CPU would not help them, so nothing yields; once they are served again, it engages.
TEST(CriticalFirst, ABusyLoopWhileCriticalWorkServesNothingHoldsNothingBack) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(),
                  {.lower_limit = 1, .threshold = 2, .lag_limit = 2ms, .probe_period = 1ms});
  for (int i = 0; i < 3; ++i) g.CriticalBegin();  // stuck on their pool
  bool busy_done = false;
  BusyFor(io, 150ms, 5ms, busy_done);  // busy, but no critical request served
  auto t0 = std::chrono::steady_clock::now();
  while (!busy_done && std::chrono::steady_clock::now() - t0 < 3s) {
    io.run_one_for(10ms);
    EXPECT_FALSE(g.engaged());
  }
  EXPECT_TRUE(busy_done);
  EXPECT_GE(g.probes(), 10u);
  EXPECT_EQ(g.late_probes(), 0u);
  // Now critical requests are served on the busy loop: it engages.
  busy_done = false;
  BusyFor(io, 150ms, 5ms, busy_done, &g);
  t0 = std::chrono::steady_clock::now();
  while (!g.engaged() && std::chrono::steady_clock::now() - t0 < 3s) io.run_one_for(10ms);
  EXPECT_TRUE(g.engaged());
  while (!busy_done && std::chrono::steady_clock::now() - t0 < 3s) io.run_one_for(10ms);
}

// At shutdown every waiter goes and nothing waits from then on (the node calls Close before
// its io_contexts are destroyed).
TEST(CriticalFirst, CloseReleasesEveryWaiter) {
  asio::io_context io;
  CriticalFirst g(io.get_executor(), 1);
  g.CriticalBegin();
  std::optional<bool> a, b, c, d;
  Ask(io, g, Tier::kMedium, Deadline::After(10s), a);
  Ask(io, g, Tier::kMedium, Deadline::After(10s), b);
  Ask(io, g, Tier::kLow, Deadline::After(10s), c);
  Ask(io, g, Tier::kLow, Deadline::After(10s), d);
  Poll(io);
  EXPECT_FALSE(b.has_value());
  EXPECT_FALSE(d.has_value());
  g.Close();
  Poll(io);
  EXPECT_EQ(b, true);
  EXPECT_EQ(d, true);
  EXPECT_EQ(g.waiting(Tier::kMedium), 0);
  std::optional<bool> e;
  Ask(io, g, Tier::kMedium, Deadline::After(10s), e);
  Poll(io);
  EXPECT_EQ(e, true);
  EXPECT_FALSE(g.engaged());
}

}  // namespace
}  // namespace continuum::resilience
