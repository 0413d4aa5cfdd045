#pragma once
// Renders the metrics in the Prometheus text exposition format (version 0.0.4).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "observability/group_monitor.hpp"
#include "observability/metrics.hpp"
#include "observability/process_stats.hpp"

namespace connector {

/// State read at scrape time from the parts that own it.
struct LiveState {
  std::optional<std::size_t> events_in_flight;  // empty before the pipeline exists
  GroupStatus group;
  bool output_up = false;
  bool token_metric = false;  // the output uses Event Hubs tokens
};

/// The whole /metrics body. `now_unix_s` is the time used for "seconds until" values.
std::string render_exposition(const Metrics& metrics, const LiveState& live, const ProcessStats& process,
                              std::int64_t now_unix_s);

}  // namespace connector
