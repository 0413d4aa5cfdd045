#pragma once
// The connector's one validated, immutable configuration.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/host_port.hpp"
#include "config/no_proxy.hpp"
#include "config/proxy_url.hpp"

namespace connector {

/// Where and how to reach Redis, parsed from REDIS_URL (plus REDIS_USERNAME/REDIS_PASSWORD overrides).
struct RedisEndpoint {
  enum class Scheme { Tcp, Tls, Unix };
  Scheme scheme = Scheme::Tcp;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string unix_path;  // Scheme::Unix only
  std::string username;   // empty: no ACL user ("AUTH pass" alone when a password is set)
  std::string password;   // secret: never logged
  int database = 0;

  /// The address for messages and logs, without credentials: "redis://host:6379/0", "unix:///path".
  std::string describe() const;
};

/// TLS settings for rediss:// (REDIS_TLS_*). Verification is on unless `insecure`.
struct RedisTlsOptions {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name;  // SNI and the name verified; empty: the URL's host
  bool insecure = false;
};

/// The parts of EVENT_HUB_CONNECTION_STRING.
struct EventHubsConnectionString {
  std::string endpoint;       // as given, e.g. "sb://ns.servicebus.windows.net/"
  std::string host;           // "ns.servicebus.windows.net"
  std::uint16_t port = 5671;  // 5672 by default with UseDevelopmentEmulator=true
  bool port_explicit = false;  // the Endpoint named the port (the WebSocket transport's is 443 otherwise)
  std::string shared_access_key_name;
  std::string shared_access_key;        // secret
  std::string shared_access_signature;  // secret; a ready token instead of a key
  std::string entity_path;
  bool use_development_emulator = false;
};

/// Where the HTTP endpoint listens (HTTP_ADDRESS): an IPv4 address, a host name or an IPv6 address.
struct HttpAddress {
  std::string host;
  std::uint16_t port = 0;

  /// "host:port", or "[v6]:port" for an IPv6 address.
  std::string describe() const;
};

/// Which azure-identity credential the settings select (DefaultAzureCredential's order: environment
/// (client secret), then workload identity, then managed identity).
enum class EntraCredentialKind {
  ClientSecret,
  WorkloadIdentity,
  ManagedIdentityAppService,
  ManagedIdentityImds
};

/// Microsoft Entra ID settings, under azure-identity's variable names.
struct EntraSettings {
  std::string tenant_id;
  std::string client_id;      // the app registration, or a user-assigned managed identity
  std::string client_secret;  // secret
  std::string federated_token_file;
  std::string authority_host;
  std::string identity_endpoint;               // App Service / Container Apps managed identity
  std::string identity_header;                 // secret
  std::string imds_host;                       // AZURE_POD_IDENTITY_AUTHORITY_HOST
  std::string ca_file;                         // extra CA for the token endpoint (AZURE_IDENTITY_TLS_CA_FILE)
  std::chrono::milliseconds refresh_margin{};  // a token is replaced this long before it expires

  EntraCredentialKind kind() const;
  /// One line for logs and --check-config: the credential and where it asks (never a secret).
  std::string describe() const;
};

enum class OutputType { LocalFile, EventHubs, Blackhole };
/// How AMQP reaches Event Hubs (EVENT_HUBS_TRANSPORT): AMQPS on 5671, or inside a WebSocket on 443.
enum class EventHubsTransport { Amqp, WebSockets };
/// LOCAL_FILE: `<dir>/<id>.json` (Flat) or `<dir>/YYYY/MM/DD/HH/<id>.json` by the ID's UTC time (Hourly).
enum class OutputLayout { Flat, Hourly };
enum class LogLevel { Trace = 10, Debug = 20, Info = 30, Warn = 40, Error = 50, Fatal = 60 };
enum class LogFormat { Json, Pretty };

/// BATCH_SIZE … MAX_DELIVERY_ATTEMPTS: how the pipeline reads, retries, claims and stops.
struct DeliveryTuning {
  std::size_t batch_size = 0;
  std::size_t max_in_flight_batches = 0;
  std::chrono::milliseconds poll_timeout{};
  std::chrono::milliseconds retry_delay{};
  std::chrono::milliseconds shutdown_grace{};
  std::chrono::milliseconds claim_interval{};
  std::chrono::milliseconds claim_min_idle{};
  unsigned max_delivery_attempts = 0;
};

/// One stream the connector reads, and where its undeliverable entries go.
struct StreamSpec {
  std::string key;
  std::string dead_letter_stream;

  friend bool operator==(const StreamSpec&, const StreamSpec&) = default;
};

/// Every setting, validated. Built once by parse_command_line() (config_loader.hpp); nothing below main
/// reads the environment. The defaults are the settings table's (config/settings.cpp), applied by the
/// loader; the members have none of their own, so a Config the loader did not build holds zeros.
struct Config {
  RedisEndpoint redis;
  RedisTlsOptions redis_tls;
  bool redis_cluster = false;                   // REDIS_CLUSTER: route to the stream key's slot primary
  std::vector<HostPort> redis_cluster_nodes;    // REDIS_CLUSTER_NODES: seeds besides REDIS_URL's node
  std::vector<HostPort> redis_sentinels;        // REDIS_SENTINELS: empty, no Sentinel
  std::string redis_sentinel_master;            // REDIS_SENTINEL_MASTER
  std::string redis_sentinel_username;          // REDIS_SENTINEL_USERNAME
  std::string redis_sentinel_password;          // REDIS_SENTINEL_PASSWORD; secret

  std::vector<StreamSpec> streams;  // STREAM_KEY: one or more, each with its dead-letter stream
  std::string consumer_group;
  std::string consumer_name;  // {PID} and {HOSTNAME} already expanded
  std::string group_start_id;

  OutputType output{};
  std::filesystem::path output_directory;
  bool output_fsync = false;
  OutputLayout output_layout{};
  std::size_t output_writers = 0;

  std::optional<EventHubsConnectionString> eventhubs;  // set when OUTPUT_ADAPTER_TYPE=EVENT_HUBS
  std::string event_hub_name;                          // from EVENT_HUB_NAME or EntityPath
  std::optional<std::string> partition_id;
  std::optional<std::string> partition_key_field;
  std::string eventhubs_ca_file;
  std::size_t eventhubs_sender_links = 0;  // EVENT_HUBS_SENDER_LINKS
  bool eventhubs_entra = false;  // EVENT_HUB_FULLY_QUALIFIED_NAMESPACE: Entra ID tokens instead of SAS
  EventHubsTransport eventhubs_transport{};  // EVENT_HUBS_TRANSPORT
  bool eventhubs_batching = true;            // EVENT_HUBS_BATCHING
  std::optional<ProxyUrl> https_proxy;       // HTTPS_PROXY (or https_proxy); read for websockets only
  NoProxy no_proxy;                          // NO_PROXY (or no_proxy)

  bool redis_entra = false;            // REDIS_AUTH=entra: the password is an Entra ID token
  std::optional<EntraSettings> entra;  // set when Event Hubs or Redis use Entra ID

  std::optional<std::string> message_body_field;

  DeliveryTuning tuning;
  std::string dead_letter_stream;  // DEAD_LETTER_STREAM as set; empty: each stream's "<key>:dead-letter"

  std::optional<HttpAddress> http_address;     // empty: HTTP_ADDRESS=off
  std::chrono::milliseconds stats_interval{};  // 0: no stats line

  LogLevel log_level{};
  LogFormat log_format{};
};

/// STREAM_KEY as one text, "a,b,c": for log lines.
std::string stream_keys_text(const Config& config);

}  // namespace connector
