#include "app/component_options.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common/errors.hpp"
#include "redis/redis_routing.hpp"

namespace connector {
namespace {
using std::chrono::milliseconds;

constexpr milliseconds kBackoffCap{60000};
// Beyond a blocking read and the longest back-off: a reconnect with its command timeouts, widely.
constexpr milliseconds kStuckMargin{60000};
}  // namespace

milliseconds max_retry_delay(const Config& config) {
  return std::max(kBackoffCap, config.tuning.retry_delay);
}

namespace {
/// The sentinels' own connection: REDIS_URL's scheme and TLS options, their own credentials.
SentinelSettings sentinel_settings_from_config(const Config& config) {
  SentinelSettings settings;
  settings.sentinels = config.redis_sentinels;
  settings.master_name = config.redis_sentinel_master;
  settings.connection.endpoint.scheme = config.redis.scheme;
  settings.connection.endpoint.username = config.redis_sentinel_username;
  settings.connection.endpoint.password = config.redis_sentinel_password;
  settings.connection.tls = config.redis_tls;
  return settings;
}
}  // namespace

RedisConnectionOptions redis_options_from_config(const Config& config, const StreamSpec& stream,
                                                 std::shared_ptr<const AccessTokenProvider> entra_tokens) {
  RedisConnectionOptions options;
  options.endpoint = config.redis;
  options.tls = config.redis_tls;
  options.client_name = config.consumer_name;
  options.entra_tokens = std::move(entra_tokens);  // before the router copies the options for the nodes
  if (config.redis_cluster) {
    options.router = std::make_shared<ClusterRouter>(options, config.redis_cluster_nodes, stream.key);
  } else if (!config.redis_sentinels.empty()) {
    options.router = std::make_shared<SentinelRouter>(sentinel_settings_from_config(config));
  }
  return options;
}

StreamConsumerOptions stream_options_from_config(const Config& config, const StreamSpec& stream) {
  StreamConsumerOptions options;
  options.stream_key = stream.key;
  options.group = config.consumer_group;
  options.consumer = config.consumer_name;
  options.group_start_id = config.group_start_id;
  options.dead_letter_stream = stream.dead_letter_stream;
  return options;
}

EncoderOptions encoder_options_from_config(const Config& config, const StreamSpec& stream) {
  return EncoderOptions{stream.key, config.message_body_field, config.partition_key_field};
}

PipelineOptions pipeline_options_from_config(const Config& config) {
  PipelineOptions options;
  static_cast<DeliveryTuning&>(options) = config.tuning;
  options.max_retry_delay = max_retry_delay(config);
  return options;
}

std::string stream_directory(std::string_view stream_key) {
  std::string name;
  for (std::size_t i = 0; i < stream_key.size(); ++i) {
    const char c = stream_key[i];
    if (c == '/' || c == '%' || c == '\0' || (i == 0 && c == '.')) {
      name += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    } else {
      name += c;
    }
  }
  return name;
}

LocalFileSinkOptions local_file_options_from_config(const Config& config, const StreamSpec& stream) {
  auto directory = config.output_directory;
  if (config.streams.size() > 1) directory /= stream_directory(stream.key);
  return LocalFileSinkOptions{std::move(directory), config.output_fsync, stream.key, config.output_layout,
                              config.output_writers};
}

namespace {
/// EVENT_HUBS_TRANSPORT=websockets: wss:// on 443 (ws:// on 80 for the emulator) unless the Endpoint names
/// a port, through HTTPS_PROXY unless NO_PROXY names the host.
AmqpPathOptions websocket_options_from_config(const Config& config) {
  const EventHubsConnectionString& endpoint = *config.eventhubs;
  AmqpPathOptions options;
  options.websocket = true;
  options.host = endpoint.host;
  options.tls = !endpoint.use_development_emulator;
  options.port = endpoint.port_explicit ? endpoint.port : options.tls ? 443 : 80;
  options.ca_file = config.eventhubs_ca_file;
  if (config.https_proxy && !config.no_proxy.matches(endpoint.host)) options.proxy = config.https_proxy;
  return options;
}
}  // namespace

EventHubsSinkOptions eventhubs_options_from_config(const Config& config) {
  if (!config.eventhubs) {
    throw ConfigurationError({"OUTPUT_ADAPTER_TYPE=EVENT_HUBS needs EVENT_HUB_CONNECTION_STRING"});
  }
  EventHubsSinkOptions options;
  options.connection = *config.eventhubs;
  options.hub = config.event_hub_name.empty() ? config.eventhubs->entity_path : config.event_hub_name;
  options.partition_id = config.partition_id;
  options.ca_file = config.eventhubs_ca_file;
  // Bounds memory: what the pipeline may have in flight at once.
  options.max_in_flight_events =
      std::max<std::size_t>(1, config.tuning.batch_size * config.tuning.max_in_flight_batches);
  options.retry_delay = config.tuning.retry_delay;
  options.max_retry_delay = max_retry_delay(config);
  options.sender_links = config.eventhubs_sender_links;
  options.batching = config.eventhubs_batching;
  if (config.eventhubs_transport == EventHubsTransport::WebSockets) {
    options.websocket = websocket_options_from_config(config);
  }
  return options;
}

ObservabilityOptions observability_options_from_config(const Config& config,
                                                       std::shared_ptr<const AccessTokenProvider> entra_tokens) {
  ObservabilityOptions options;
  for (const StreamSpec& stream : config.streams) {
    options.streams.push_back({redis_options_from_config(config, stream, entra_tokens), stream.key});
  }
  options.group = config.consumer_group;
  options.http_address = config.http_address;
  options.stats_interval = config.stats_interval;
  // The longest a pipeline loop may go without a beat while working as designed.
  options.stuck_after = config.tuning.poll_timeout + max_retry_delay(config) + kStuckMargin;
  options.eventhubs_output = config.output == OutputType::EventHubs;
  return options;
}

}  // namespace connector
