#pragma once
// Wires the HTTP endpoint, the consumer-group monitor and the stats line to a running pipeline.
#include <memory>

#include "app/component_options.hpp"
#include "core/pipeline.hpp"
#include "observability/exposition.hpp"
#include "observability/group_monitor.hpp"
#include "observability/http_server.hpp"
#include "observability/stats_reporter.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// Owns what HTTP_ADDRESS and STATS_INTERVAL_MS turn on (observability_options_from_config); reads the
/// pipeline and the sink, never changes them. The pipeline and the sink must outlive it.
class Observability {
 public:
  Observability(ObservabilityOptions options, const Pipeline& pipeline, const Sink& sink);
  ~Observability();
  Observability(const Observability&) = delete;
  Observability& operator=(const Observability&) = delete;

  /// Binds the HTTP endpoint (throws ConnectorError naming the address when it cannot) and starts
  /// polling Redis and writing stats lines.
  void start();
  void stop();

 private:
  LiveState live_state() const;

  const Pipeline& pipeline_;
  const Sink& sink_;
  const bool eventhubs_output_;
  const std::chrono::milliseconds stuck_after_;
  std::unique_ptr<GroupMonitor> monitor_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<StatsReporter> stats_;
};

}  // namespace connector
