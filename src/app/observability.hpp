#pragma once
// Wires the HTTP endpoint, the consumer-group monitors and the stats lines to the running pipelines.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/component_options.hpp"
#include "core/pipeline.hpp"
#include "observability/exposition.hpp"
#include "observability/group_monitor.hpp"
#include "observability/http_server.hpp"
#include "observability/stats_reporter.hpp"

namespace connector {

/// One stream's pipeline and counters, as Observability reads them.
struct ObservedPipeline {
  const Pipeline* pipeline = nullptr;
  const Metrics* metrics = nullptr;
};

/// Owns what HTTP_ADDRESS and STATS_INTERVAL_MS turn on (observability_options_from_config): a group
/// monitor per stream, the HTTP endpoint, the stats lines. Reads the pipelines and the output, never
/// changes them; they must outlive it.
class Observability {
 public:
  /// `pipelines` in the order of `options.streams`, one each; `output_ready` says whether the output can
  /// take events.
  Observability(ObservabilityOptions options, std::vector<ObservedPipeline> pipelines,
                std::function<bool()> output_ready);
  ~Observability();
  Observability(const Observability&) = delete;
  Observability& operator=(const Observability&) = delete;

  /// Binds the HTTP endpoint (throws ConnectorError naming the address when it cannot) and starts
  /// polling Redis and writing stats lines.
  void start();
  void stop();

 private:
  LiveState live_state() const;

  /// One stream: its key, pipeline and group monitor (null when nothing reads the group's state).
  struct ObservedStream {
    std::string key;
    ObservedPipeline pipeline;
    std::unique_ptr<GroupMonitor> monitor;
  };

  std::vector<ObservedStream> streams_;
  std::function<bool()> output_ready_;
  const bool eventhubs_output_;
  const std::chrono::milliseconds stuck_after_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<StatsReporter> stats_;
};

}  // namespace connector
