#include "resilience/breaker.hpp"

#include <gtest/gtest.h>

namespace continuum::resilience {
namespace {

using namespace std::chrono_literals;
using State = CircuitBreaker::State;
using Health = CircuitBreaker::Health;

CircuitBreaker::Options Opts() {
  CircuitBreaker::Options o;
  o.failure_threshold = 3;
  o.window = 10;
  o.min_calls = 6;
  o.failure_rate = 0.5;
  o.open_for = 1000ms;
  o.half_open_calls = 1;
  o.close_after = 2;
  return o;
}

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresAndRefusesCalls) {
  CircuitBreaker b(Opts());
  auto t = CircuitBreaker::Clock::now();
  EXPECT_EQ(b.health(t), Health::kHealthy);
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(b.Allow(t));
    b.OnFailure(t);
  }
  EXPECT_EQ(b.state(t), State::kClosed);
  EXPECT_EQ(b.health(t), Health::kDegraded);
  ASSERT_TRUE(b.Allow(t));
  b.OnFailure(t);
  EXPECT_EQ(b.state(t), State::kOpen);
  EXPECT_EQ(b.health(t), Health::kDown);
  EXPECT_FALSE(b.Allow(t + 500ms));
  EXPECT_EQ(b.stats().refused, 1u);
}

TEST(CircuitBreaker, HalfOpenLetsOneTrialThroughAndClosesAfterSuccesses) {
  CircuitBreaker b(Opts());
  auto t = CircuitBreaker::Clock::now();
  for (int i = 0; i < 3; ++i) {
    b.Allow(t);
    b.OnFailure(t);
  }
  auto later = t + 1001ms;
  EXPECT_EQ(b.state(later), State::kHalfOpen);
  ASSERT_TRUE(b.Allow(later));
  EXPECT_FALSE(b.Allow(later)) << "only one trial call at a time";
  b.OnSuccess(later);
  EXPECT_EQ(b.state(later), State::kHalfOpen);
  ASSERT_TRUE(b.Allow(later));
  b.OnSuccess(later);
  EXPECT_EQ(b.state(later), State::kClosed);
  EXPECT_EQ(b.health(later), Health::kHealthy);
}

TEST(CircuitBreaker, AFailedTrialOpensItAgain) {
  CircuitBreaker b(Opts());
  auto t = CircuitBreaker::Clock::now();
  for (int i = 0; i < 3; ++i) {
    b.Allow(t);
    b.OnFailure(t);
  }
  auto later = t + 1500ms;
  ASSERT_TRUE(b.Allow(later));
  b.OnFailure(later);
  EXPECT_EQ(b.state(later + 500ms), State::kOpen);
  EXPECT_EQ(b.state(later + 1001ms), State::kHalfOpen);
  EXPECT_EQ(b.stats().opened, 2u);
}

TEST(CircuitBreaker, OpensOnAHighFailureRateWithoutARun) {
  CircuitBreaker b(Opts());
  auto t = CircuitBreaker::Clock::now();
  // fail, ok, fail, ok, ...: never 3 in a row, but 4 of 7 fail.
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(b.Allow(t)) << i;
    if (i % 2 == 0)
      b.OnFailure(t);
    else
      b.OnSuccess(t);
  }
  EXPECT_EQ(b.state(t), State::kOpen);
}

TEST(CircuitBreaker, AnAbandonedTrialFreesItsSlot) {
  CircuitBreaker b(Opts());
  auto t = CircuitBreaker::Clock::now();
  for (int i = 0; i < 3; ++i) {
    b.Allow(t);
    b.OnFailure(t);
  }
  auto later = t + 1001ms;
  ASSERT_TRUE(b.Allow(later));
  b.OnAbandoned();
  EXPECT_TRUE(b.Allow(later));
}

}  // namespace
}  // namespace continuum::resilience
