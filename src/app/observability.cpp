#include "app/observability.hpp"

#include <algorithm>
#include <stdexcept>

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

Observability::Observability(ObservabilityOptions options, std::vector<ObservedPipeline> pipelines,
                             std::function<bool()> output_ready)
    : output_ready_(std::move(output_ready)),
      eventhubs_output_(options.eventhubs_output),
      stuck_after_(options.stuck_after) {
  if (pipelines.size() != options.streams.size()) {
    throw std::logic_error("Observability: one pipeline per stream of its options");
  }
  const bool watched = options.http_address || options.stats_interval.count() > 0;
  for (std::size_t i = 0; i < pipelines.size(); ++i) {
    ObservedStreamOptions& stream = options.streams[i];
    auto monitor = watched ? std::make_unique<GroupMonitor>(std::move(stream.redis), stream.stream_key,
                                                            options.group, kGroupPollInterval)
                           : nullptr;
    streams_.push_back({std::move(stream.stream_key), pipelines[i], std::move(monitor)});
  }
  if (options.http_address) {
    HttpHandlers handlers;
    handlers.metrics = [this] {
      const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      return render_exposition(live_state(), metrics(), read_process_stats(), now);
    };
    handlers.liveness = [this] { return check_liveness(live_state().streams, stuck_after_, steady_now_ms()); };
    handlers.readiness = [this] {
      const LiveState live = live_state();
      return check_readiness(live.streams, live.output_up);
    };
    http_ = std::make_unique<HttpServer>(*options.http_address, std::move(handlers));
  }
  if (options.stats_interval.count() > 0) {
    stats_ = std::make_unique<StatsReporter>(options.stats_interval, [this] { return live_state(); });
  }
}

Observability::~Observability() { stop(); }

void Observability::start() {
  if (http_) http_->start();
  for (auto& stream : streams_) {
    if (stream.monitor) stream.monitor->start();
  }
  if (stats_) stats_->start();
}

void Observability::stop() {
  if (stats_) stats_->stop();
  if (http_) http_->stop();
  for (auto& stream : streams_) {
    if (stream.monitor) stream.monitor->stop();
  }
}

LiveState Observability::live_state() const {
  LiveState live;
  for (const ObservedStream& observed : streams_) {
    StreamLive stream;
    stream.key = observed.key;
    stream.metrics = observed.pipeline.metrics;
    if (observed.pipeline.pipeline != nullptr) {
      stream.events_in_flight = observed.pipeline.pipeline->stats().in_flight_events;
    }
    if (observed.monitor) stream.group = observed.monitor->status();
    live.streams.push_back(std::move(stream));
  }
  live.output_up = output_ready_();
  live.token_metric = eventhubs_output_;
  return live;
}

}  // namespace connector
