#include "app/observability.hpp"

#include <algorithm>

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
}  // namespace

Observability::Observability(ObservabilityOptions options, const Pipeline& pipeline, const Sink& sink)
    : pipeline_(pipeline),
      sink_(sink),
      eventhubs_output_(options.eventhubs_output),
      stuck_after_(options.stuck_after) {
  if (options.http_address || options.stats_interval.count() > 0) {
    monitor_ = std::make_unique<GroupMonitor>(std::move(options.redis), std::move(options.stream_key),
                                              std::move(options.group), kGroupPollInterval);
  }
  if (options.http_address) {
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
    http_ = std::make_unique<HttpServer>(*options.http_address, std::move(handlers));
  }
  if (options.stats_interval.count() > 0) {
    stats_ = std::make_unique<StatsReporter>(options.stats_interval, [this] { return live_state(); });
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
