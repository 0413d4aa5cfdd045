#include "app/stream_worker.hpp"

#include "app/component_options.hpp"

namespace connector {

StreamWorker::StreamWorker(const Config& config, const StreamSpec& stream, const RedisConnectionOptions& redis,
                           std::unique_ptr<Sink> sink)
    : sink_(std::move(sink)),
      connections_(redis, stream_options_from_config(config, stream)),
      pipeline_(pipeline_options_from_config(config), connections_.reader, connections_.acker,
                Encoder(encoder_options_from_config(config, stream)), *sink_, metrics_) {}

}  // namespace connector
