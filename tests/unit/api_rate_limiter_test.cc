#include "api/rate_limiter.h"

#include <gtest/gtest.h>

#include <thread>

namespace connreg::api {
namespace {

TEST(ApiRateLimiter, DisabledAllowsEverything) {
  RateLimiter r(0);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(r.Acquire("c"), 0);
}

TEST(ApiRateLimiter, AllowsABurstOfOneSecondThenRefuses) {
  RateLimiter r(5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(r.Acquire("c"), 0) << i;
  EXPECT_GE(r.Acquire("c"), 1);
  EXPECT_EQ(r.Acquire("other"), 0) << "buckets are per client";
}

TEST(ApiRateLimiter, RefillsOverTime) {
  RateLimiter r(20);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(r.Acquire("c"), 0);
  ASSERT_GE(r.Acquire("c"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_EQ(r.Acquire("c"), 0);
}

TEST(ApiRateLimiter, RetryAfterGrowsForSlowRates) {
  RateLimiter r(0.25);
  EXPECT_EQ(r.Acquire("c"), 0);
  EXPECT_GE(r.Acquire("c"), 3);
}

}  // namespace
}  // namespace connreg::api
