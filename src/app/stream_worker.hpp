#pragma once
// One configured stream's share of the connector: its counters, Redis connections, sink and pipeline.
#include <memory>

#include "config/config.hpp"
#include "core/pipeline.hpp"
#include "observability/metrics.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// A stream read by its own pipeline (reader and acker threads, two Redis connections, its own in-flight
/// bound, pending recovery, claims and dead letters) into `sink`: a lease of the shared output, or an
/// output of its own. Counts into its own Metrics, so every figure can carry the stream's name.
class StreamWorker {
 public:
  StreamWorker(const Config& config, const StreamSpec& stream, const RedisConnectionOptions& redis,
               std::unique_ptr<Sink> sink);
  StreamWorker(const StreamWorker&) = delete;
  StreamWorker& operator=(const StreamWorker&) = delete;

  Pipeline& pipeline() { return pipeline_; }
  const Pipeline& pipeline() const { return pipeline_; }
  const Metrics& metrics() const { return metrics_; }
  Sink& sink() { return *sink_; }

 private:
  Metrics metrics_;
  std::unique_ptr<Sink> sink_;
  PipelineStreams connections_;
  Pipeline pipeline_;  // last: it uses everything above
};

}  // namespace connector
