#include "app/observability.hpp"

#include <algorithm>

#include "app/connector_app.hpp"
#include "observability/logger.hpp"
#include "observability/process_stats.hpp"

namespace connector {
namespace {
using std::chrono::milliseconds;

// "Every few seconds": fresh enough for alerts and the readiness probe, one round trip each.
constexpr milliseconds kGroupPollInterval{5000};

std::int64_t steady_now_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The longest a pipeline loop may go without a beat while working as designed: a blocking read, the
/// longest back-off, and a reconnect with its command timeouts, plus a wide margin.
milliseconds stuck_limit(const Config& config) {
  const milliseconds max_backoff = std::max(milliseconds(60000), config.retry_delay);
  return config.poll_timeout + max_backoff + milliseconds(60000);
}
}  // namespace

Observability::Observability(const Config& config, const Pipeline& pipeline, const Sink& sink)
    : pipeline_(pipeline),
      sink_(sink),
      eventhubs_output_(config.output == OutputType::EventHubs),
      stuck_after_(stuck_limit(config)) {
  if (config.http_address || config.stats_interval.count() > 0) {
    monitor_ = std::make_unique<GroupMonitor>(redis_options_from_config(config), config.stream_key,
                                              config.consumer_group, kGroupPollInterval);
  }
  if (config.http_address) {
    HttpHandlers handlers;
    handlers.metrics = [this] {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      return render_exposition(metrics(), live_state(), read_process_stats(), now);
    };
    handlers.liveness = [this] {
      return check_liveness(metrics().reader_heartbeat, metrics().acker_heartbeat, stuck_after_,
                            steady_now_ms());
    };
    handlers.readiness = [this] { return check_readiness(monitor_->status(), sink_.ready()); };
    http_ = std::make_unique<HttpServer>(*config.http_address, std::move(handlers));
  }
  if (config.stats_interval.count() > 0) {
    stats_ = std::make_unique<StatsReporter>(config.stats_interval, [this] { return live_state(); });
  }
}

Observability::~Observability() { stop(); }

void Observability::start() {
  if (http_) http_->start();
  if (monitor_) monitor_->start();
  if (stats_) stats_->start();
}

void Observability::stop() {
  if (stats_) stats_->stop();
  if (http_) http_->stop();
  if (monitor_) monitor_->stop();
}

LiveState Observability::live_state() const {
  LiveState live;
  live.events_in_flight = pipeline_.stats().in_flight_events;
  if (monitor_) live.group = monitor_->status();
  live.output_up = sink_.ready();
  live.token_metric = eventhubs_output_;
  return live;
}

}  // namespace connector
