#pragma once
// Config → each part's options: the one place where a setting reaches the part that uses it. The parts'
// option structs hold no default of a setting; the settings table (config/settings.cpp) has them all.
#include <chrono>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "core/encoder.hpp"
#include "core/pipeline.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "redis/redis_connection.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/local_file_sink.hpp"

namespace connector {

/// What Observability (app/observability.hpp) turns on and where it looks.
struct ObservabilityOptions {
  RedisConnectionOptions redis;  // the consumer-group monitor's own connection
  std::string stream_key;
  std::string group;
  std::optional<HttpAddress> http_address;     // empty: no HTTP endpoint
  std::chrono::milliseconds stats_interval{};  // 0: no stats line
  std::chrono::milliseconds stuck_after{};     // a pipeline loop without a beat this long is not live
  bool eventhubs_output = false;               // the token expiry metric applies
};

/// The cap of every exponential back-off (Redis and Event Hubs reconnects, retries): 60 s, or
/// RETRY_DELAY_MS when that is longer.
std::chrono::milliseconds max_retry_delay(const Config& config);

/// The pipeline's Redis connection: REDIS_URL, TLS, the client name, `entra_tokens` (REDIS_AUTH=entra),
/// and a router when REDIS_CLUSTER or REDIS_SENTINELS asks for one (consulted at every connect()).
RedisConnectionOptions redis_options_from_config(const Config& config,
                                                 std::shared_ptr<const AccessTokenProvider> entra_tokens = nullptr);
StreamConsumerOptions stream_options_from_config(const Config& config);
EncoderOptions encoder_options_from_config(const Config& config);
PipelineOptions pipeline_options_from_config(const Config& config);
LocalFileSinkOptions local_file_options_from_config(const Config& config);
/// Throws ConfigurationError when the configuration has no Event Hubs endpoint.
EventHubsSinkOptions eventhubs_options_from_config(const Config& config);
ObservabilityOptions observability_options_from_config(const Config& config);

}  // namespace connector
