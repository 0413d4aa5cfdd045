// ClaimSchedule: when claim passes are due and where a scan of the pending list goes on, on a fake clock.
#include "core/claim_schedule.hpp"

#include <gtest/gtest.h>

namespace connector {
namespace {

using std::chrono::milliseconds;
using Clock = ClaimSchedule::Clock;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

TEST(claim_schedule_test, the_first_pass_is_due_an_interval_after_the_start) {
  ClaimSchedule claims(milliseconds(100));
  claims.start(t0);
  EXPECT_EQ(claims.due(), t0 + milliseconds(100));
  EXPECT_FALSE(claims.is_due(t0 + milliseconds(99)));
  EXPECT_TRUE(claims.is_due(t0 + milliseconds(100)));
  EXPECT_EQ(claims.cursor(), ClaimSchedule::kScanStart);
}

TEST(claim_schedule_test, a_scan_goes_on_at_once_while_pages_follow_and_rests_once_complete) {
  ClaimSchedule claims(milliseconds(100));
  claims.start(t0);
  claims.page_done("5-0", t0 + milliseconds(100));
  EXPECT_EQ(claims.cursor(), "5-0");
  EXPECT_EQ(claims.due(), t0 + milliseconds(100));
  claims.page_done(std::string(ClaimSchedule::kScanStart), t0 + milliseconds(110));
  EXPECT_EQ(claims.cursor(), ClaimSchedule::kScanStart);
  EXPECT_EQ(claims.due(), t0 + milliseconds(210));
}

TEST(claim_schedule_test, a_failed_page_restarts_the_scan_and_a_put_off_pass_keeps_its_place) {
  ClaimSchedule claims(milliseconds(100));
  claims.start(t0);
  claims.page_done("5-0", t0);
  claims.put_off(t0 + milliseconds(10));
  EXPECT_EQ(claims.cursor(), "5-0");
  EXPECT_EQ(claims.due(), t0 + milliseconds(110));
  claims.page_failed(t0 + milliseconds(110));
  EXPECT_EQ(claims.cursor(), ClaimSchedule::kScanStart);
  EXPECT_EQ(claims.due(), t0 + milliseconds(210));
}

}  // namespace
}  // namespace connector
