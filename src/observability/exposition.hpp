#pragma once
// Renders the metrics in the Prometheus text exposition format (version 0.0.4).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "observability/group_monitor.hpp"
#include "observability/metrics.hpp"
#include "observability/process_stats.hpp"

namespace connector {

/// One stream's state, read at scrape time from the parts that own it.
struct StreamLive {
  std::string key;
  const Metrics* metrics = nullptr;             // the stream pipeline's counters; null: none yet
  std::optional<std::size_t> events_in_flight;  // empty before the pipeline exists
  GroupStatus group;
};

/// State read at scrape time from the parts that own it.
struct LiveState {
  std::vector<StreamLive> streams;  // STREAM_KEY's order
  bool output_up = false;
  bool token_metric = false;  // the output uses Event Hubs tokens
};

/// The whole /metrics body: each stream's delivery and group metrics labelled `stream`, then the
/// output's and the process's. `output` holds what the output counts itself (token expiry, events it
/// sent again on a new connection). `now_unix_s` is the time used for "seconds until" values.
std::string render_exposition(const LiveState& live, const Metrics& output, const ProcessStats& process,
                              std::int64_t now_unix_s);

}  // namespace connector
