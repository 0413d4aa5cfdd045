#include "core/claim_schedule.hpp"

namespace connector {

void ClaimSchedule::page_failed(Clock::time_point now) {
  cursor_ = kScanStart;
  due_ = now + interval_;
}

void ClaimSchedule::page_done(const std::string& next_cursor, Clock::time_point now) {
  cursor_ = next_cursor;
  // More pages wait: go on as soon as capacity allows; otherwise sleep a whole interval.
  due_ = cursor_ == kScanStart ? now + interval_ : now;
}

}  // namespace connector
