#pragma once
// When the pipeline next claims idle entries of other consumers, and where its scan of the pending list
// goes on.
#include <chrono>
#include <string>
#include <string_view>

namespace connector {

/// The timetable of claim passes: a scan of the pending list goes on page after page without a pause
/// while pages follow, and waits a whole interval once it is complete, has failed or was put off. Time is
/// passed in. Not thread-safe: the Pipeline keeps it under its lock.
class ClaimSchedule {
 public:
  using Clock = std::chrono::steady_clock;
  /// A scan starts here, and the stream commands answer it when the scan is complete.
  static constexpr std::string_view kScanStart = "0-0";

  explicit ClaimSchedule(std::chrono::milliseconds interval) : interval_(interval) {}

  /// The first pass is due one interval after `now` (the pipeline's start).
  void start(Clock::time_point now) { due_ = now + interval_; }
  Clock::time_point due() const { return due_; }
  bool is_due(Clock::time_point now) const { return now >= due_; }
  /// Where the next page starts.
  const std::string& cursor() const { return cursor_; }

  /// No pass now (the output is not ready): the next one an interval from `now`, from the same cursor.
  void put_off(Clock::time_point now) { due_ = now + interval_; }
  /// A page failed: the next scan starts from the beginning, an interval from `now`.
  void page_failed(Clock::time_point now);
  /// A page was claimed and the scan goes on from `next_cursor` (kScanStart: the scan is complete).
  void page_done(const std::string& next_cursor, Clock::time_point now);

 private:
  std::chrono::milliseconds interval_;
  Clock::time_point due_;
  std::string cursor_ = std::string(kScanStart);
};

}  // namespace connector
