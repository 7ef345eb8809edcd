#include "resilience/swr_cache.hpp"

#include <gtest/gtest.h>

namespace continuum::resilience {
namespace {

using namespace std::chrono_literals;
using F = SwrCache::Freshness;

SwrCache Make(std::size_t max = 100) {
  return SwrCache(
      {.fresh = 10s, .stale_while_revalidate = 50s, .stale_if_error = 3600s, .max_entries = max});
}

TEST(SwrCache, FreshThenRevalidateThenExpired) {
  auto c = Make();
  auto t0 = SwrCache::Clock::now();
  EXPECT_FALSE(c.Get("k", t0));
  c.Put("k", "v1", t0);
  auto h = c.Get("k", t0 + 5s);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->value, "v1");
  EXPECT_EQ(h->freshness, F::kFresh);
  EXPECT_EQ(c.Get("k", t0 + 30s)->freshness, F::kRevalidate);
  h = c.Get("k", t0 + 61s);
  EXPECT_EQ(h->freshness, F::kExpired);
  EXPECT_TRUE(h->usable_on_error);
  EXPECT_FALSE(c.Get("k", t0 + 3601s)->usable_on_error);
}

TEST(SwrCache, OneRefreshAtATimeAndFailuresAreRemembered) {
  auto c = Make();
  auto t0 = SwrCache::Clock::now();
  c.Put("k", "v1", t0);
  EXPECT_TRUE(c.BeginRefresh("k"));
  EXPECT_FALSE(c.BeginRefresh("k"));  // already in flight
  c.EndRefresh("k", false);
  EXPECT_TRUE(c.Get("k", t0 + 1s)->last_refresh_failed);
  EXPECT_EQ(c.stats().refresh_failures, 1u);
  EXPECT_TRUE(c.BeginRefresh("k"));
  c.Put("k", "v2", t0 + 2s);
  c.EndRefresh("k", true);
  auto h = c.Get("k", t0 + 3s);
  EXPECT_EQ(h->value, "v2");
  EXPECT_FALSE(h->last_refresh_failed);
  EXPECT_TRUE(c.BeginRefresh("unknown"));  // nothing cached: load it
}

TEST(SwrCache, StaysWithinItsBoundDroppingTheOldest) {
  auto c = Make(10);
  auto t0 = SwrCache::Clock::now();
  for (int i = 0; i < 25; ++i) c.Put("k" + std::to_string(i), "v", t0 + std::chrono::seconds(i));
  EXPECT_LE(c.stats().entries, 10u);
  EXPECT_TRUE(c.Get("k24", t0 + 25s));
  EXPECT_FALSE(c.Get("k0", t0 + 25s));
}

}  // namespace
}  // namespace continuum::resilience
