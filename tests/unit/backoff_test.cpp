// Backoff: the capped exponential back-off with jitter that every reconnect loop uses.
#include "common/backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace connector {
namespace {

using std::chrono::milliseconds;

TEST(backoff_test, doubles_from_base_with_jitter_up_to_the_cap) {
  Backoff backoff({milliseconds(100), milliseconds(1000)}, 42);
  const long long expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (long long nominal : expected) {
    const auto delay = backoff.next().count();
    EXPECT_GE(delay, nominal * 8 / 10) << nominal;
    EXPECT_LE(delay, std::min(nominal * 12 / 10, 1000LL)) << nominal;
  }
  EXPECT_EQ(backoff.attempts(), 7u);
  backoff.reset();
  EXPECT_EQ(backoff.attempts(), 0u);
  EXPECT_LE(backoff.next().count(), 120);
}

TEST(backoff_test, jitter_spreads_delays) {
  Backoff backoff({milliseconds(1000), milliseconds(60000)}, 7);
  std::set<long long> seen;
  for (int i = 0; i < 20; ++i) {
    backoff.reset();
    seen.insert(backoff.next().count());
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(backoff_test, delay_is_capped_before_and_after_the_jitter) {
  const BackoffPolicy policy{milliseconds(100), milliseconds(1000)};
  EXPECT_EQ(policy.delay(21, 0.99).count(), 1000);
  EXPECT_EQ(policy.delay(1, 0.0).count(), 80);
  EXPECT_EQ(policy.delay(3, 0.5).count(), 400);
}

TEST(backoff_test, the_first_failure_waits_the_base_and_nonsense_bounds_are_mended) {
  const BackoffPolicy policy{milliseconds(100), milliseconds(1000)};
  EXPECT_EQ(policy.delay(0, 0.5), policy.delay(1, 0.5));
  EXPECT_EQ(policy.delay(1, 0.5).count(), 100);
  EXPECT_EQ((BackoffPolicy{milliseconds(0), milliseconds(0)}.delay(5, 0.5).count()), 1);
  EXPECT_EQ((BackoffPolicy{milliseconds(500), milliseconds(100)}.delay(5, 0.99).count()), 500);
}

TEST(backoff_test, the_thread_local_jitter_stays_within_the_unit_interval) {
  for (int i = 0; i < 1000; ++i) {
    const double unit = thread_local_jitter();
    EXPECT_GE(unit, 0.0);
    EXPECT_LT(unit, 1.0);
  }
}

}  // namespace
}  // namespace connector
