#pragma once
// Config → each part's options: the one place where a setting reaches the part that uses it. The parts'
// option structs hold no default of a setting; the settings table (config/settings.cpp) has them all.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "core/encoder.hpp"
#include "core/pipeline.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "redis/redis_connection.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/local_file_sink.hpp"

namespace connector {

/// One stream as Observability watches it: its consumer-group monitor's own connection.
struct ObservedStreamOptions {
  RedisConnectionOptions redis;
  std::string stream_key;
};

/// What Observability (app/observability.hpp) turns on and where it looks.
struct ObservabilityOptions {
  std::vector<ObservedStreamOptions> streams;  // STREAM_KEY's order
  std::string group;
  std::optional<HttpAddress> http_address;     // empty: no HTTP endpoint
  std::chrono::milliseconds stats_interval{};  // 0: no stats line
  std::chrono::milliseconds stuck_after{};     // a pipeline loop without a beat this long is not live
  bool eventhubs_output = false;               // the token expiry metric applies
};

/// The cap of every exponential back-off (Redis and Event Hubs reconnects, retries): 60 s, or
/// RETRY_DELAY_MS when that is longer.
std::chrono::milliseconds max_retry_delay(const Config& config);

/// A Redis connection for `stream`: REDIS_URL, TLS, the client name, `entra_tokens` (REDIS_AUTH=entra),
/// and a router when REDIS_CLUSTER or REDIS_SENTINELS asks for one (consulted at every connect(); on a
/// cluster, to the primary of the stream's slot).
RedisConnectionOptions redis_options_from_config(const Config& config, const StreamSpec& stream,
                                                 std::shared_ptr<const AccessTokenProvider> entra_tokens = nullptr);
StreamConsumerOptions stream_options_from_config(const Config& config, const StreamSpec& stream);
EncoderOptions encoder_options_from_config(const Config& config, const StreamSpec& stream);
PipelineOptions pipeline_options_from_config(const Config& config);
/// With several streams, each writes into its own subdirectory of OUTPUT_DIRECTORY (stream_directory()):
/// entry IDs are unique only within a stream.
LocalFileSinkOptions local_file_options_from_config(const Config& config, const StreamSpec& stream);
/// A stream key as one directory name: '/', '%' and a leading '.' percent-encoded, so no key can
/// climb out of OUTPUT_DIRECTORY or name another stream's directory.
std::string stream_directory(std::string_view stream_key);
/// Throws ConfigurationError when the configuration has no Event Hubs endpoint.
EventHubsSinkOptions eventhubs_options_from_config(const Config& config);
/// `entra_tokens`: Redis's Entra ID tokens (REDIS_AUTH=entra), for the group monitors' connections.
ObservabilityOptions observability_options_from_config(
    const Config& config, std::shared_ptr<const AccessTokenProvider> entra_tokens = nullptr);

}  // namespace connector
