#pragma once
// The periodic `stats` log line: counts and rates since the last line, lag, pending, in flight, output.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "observability/exposition.hpp"
#include "observability/metrics.hpp"
#include "observability/periodic_task.hpp"

namespace connector {

/// The counters the stats line reports, at one moment.
struct StatsTotals {
  std::uint64_t read = 0, claimed = 0, confirmed = 0, acked = 0, dead_lettered = 0, retried = 0;

  static StatsTotals of(const Metrics& metrics);
};

/// The fields of one stream's `stats` line: its key, each counter's increase since `previous` and its
/// rate per second over `seconds` (two decimals), then the stream's live state and the output's.
nlohmann::json stats_fields(const StatsTotals& previous, const StatsTotals& current, double seconds,
                            const StreamLive& stream, bool output_up);

/// Writes a `stats` line per stream at info level every `interval` on its own thread.
class StatsReporter {
 public:
  StatsReporter(std::chrono::milliseconds interval, std::function<LiveState()> live);
  ~StatsReporter();
  StatsReporter(const StatsReporter&) = delete;
  StatsReporter& operator=(const StatsReporter&) = delete;

  void start();
  void stop();

 private:
  void report();

  std::function<LiveState()> live_;
  std::vector<StatsTotals> previous_;  // per stream; the task's thread only (set by start() before it runs)
  std::chrono::steady_clock::time_point since_;
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace connector
