#include "config/settings.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <array>
#include <stdexcept>
#include <string>

#include "config/eventhubs_connection_string.hpp"
#include "config/host_port.hpp"
#include "config/http_address.hpp"
#include "config/redis_url.hpp"
#include "config/setting_binding.hpp"
#include "config/text.hpp"

namespace connector {
namespace {

using K = SettingKind;
using binding::override_of;
using binding::to;
constexpr long long kMaxMillis = 2147483647;  // ~24.8 days: fits every timer API we hand it to

constexpr SettingChoice kRedisAuth[] = {{"password", 0}, {"entra", 1}};
constexpr SettingChoice kOutputTypes[] = {{"LOCAL_FILE", static_cast<int>(OutputType::LocalFile)},
                                          {"EVENT_HUBS", static_cast<int>(OutputType::EventHubs)},
                                          {"BLACKHOLE", static_cast<int>(OutputType::Blackhole)}};
constexpr SettingChoice kOutputLayouts[] = {{"flat", static_cast<int>(OutputLayout::Flat)},
                                            {"hourly", static_cast<int>(OutputLayout::Hourly)}};
// The words the SDKs use (AmqpTcp / AmqpWebSockets), shortened.
constexpr SettingChoice kEventHubsTransports[] = {
    {"amqp", static_cast<int>(EventHubsTransport::Amqp)},
    {"websockets", static_cast<int>(EventHubsTransport::WebSockets)}};
constexpr SettingChoice kLogLevels[] = {
    {"trace", static_cast<int>(LogLevel::Trace)}, {"debug", static_cast<int>(LogLevel::Debug)},
    {"info", static_cast<int>(LogLevel::Info)},   {"warn", static_cast<int>(LogLevel::Warn)},
    {"error", static_cast<int>(LogLevel::Error)}, {"fatal", static_cast<int>(LogLevel::Fatal)}};
constexpr SettingChoice kLogFormats[] = {{"json", static_cast<int>(LogFormat::Json)},
                                         {"pretty", static_cast<int>(LogFormat::Pretty)}};

const std::string& text_of(const SettingValue& value) { return std::get<std::string>(value); }

/// Rows whose value is parsed into a structure, or shown from one, rather than copied into a member.
namespace custom {

/// REDIS_URL as --check-config shows it: the user, and `***` where the password is, so that the reader
/// sees that one is set.
std::string redis_url_for_display(const RedisEndpoint& endpoint) {
  std::string url = endpoint.describe();
  if (endpoint.username.empty() && endpoint.password.empty()) return url;
  const auto credentials = endpoint.username + (endpoint.password.empty() ? "" : ":***") + "@";
  return url.insert(url.find("://") + 3, credentials);
}

constexpr SettingBinding redis_url() {
  return {[](Config& c, const SettingValue& v) { c.redis = parse_redis_url(text_of(v)); },
          [](const Setting&, const Config& c) { return redis_url_for_display(c.redis); }};
}

std::string expand_placeholders(std::string value) {
  const auto replace_all = [&value](std::string_view from, const std::string& to) {
    for (auto pos = value.find(from); pos != std::string::npos; pos = value.find(from, pos + to.size())) {
      value.replace(pos, from.size(), to);
    }
  };
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  replace_all("{PID}", std::to_string(::getpid()));
  replace_all("{HOSTNAME}", host);
  return value;
}

/// "h1:26379,h2,[v6]:26379": a missing port stays unset (the user of the list supplies its default).
std::vector<HostPort> parse_host_list(std::string_view text) {
  std::vector<HostPort> hosts;
  if (text::trim(text).empty()) return hosts;
  for (const std::string_view item : text::split_list(text)) {
    if (item.empty()) throw std::invalid_argument("an entry of the list is empty");
    HostPort host = split_host_port(item);
    if (host.host.empty()) throw std::invalid_argument("an entry of the list has no host");
    hosts.push_back(std::move(host));
  }
  return hosts;
}

std::string host_list_for_display(const std::vector<HostPort>& hosts) {
  std::string text;
  for (const HostPort& host : hosts) {
    if (!text.empty()) text += ',';
    // fmt, as above: the false -Wrestrict of GCC 12 at -O3.
    text += host.host.find(':') != std::string::npos ? fmt::format("[{}]", host.host) : host.host;
    if (host.port) text += fmt::format(":{}", *host.port);
  }
  return text;
}

template <std::vector<HostPort> Config::*Member>
constexpr SettingBinding host_list() {
  return {[](Config& c, const SettingValue& v) { c.*Member = parse_host_list(text_of(v)); },
          [](const Setting&, const Config& c) { return host_list_for_display(c.*Member); }};
}

/// STREAM_KEY's list, "a,b, c": the keys in order, each once. Their dead-letter streams are filled in by
/// the loader's finalize step, which knows DEAD_LETTER_STREAM.
std::vector<StreamSpec> parse_stream_keys(std::string_view text) {
  std::vector<StreamSpec> streams;
  for (const std::string_view key : text::split_list(text)) {
    if (key.empty()) throw std::invalid_argument("an entry of the list is empty");
    for (const StreamSpec& seen : streams) {
      if (seen.key == key) throw std::invalid_argument(fmt::format("\"{}\" is listed twice", key));
    }
    streams.push_back({std::string(key), {}});
  }
  return streams;
}

template <auto Member>
std::string joined(const Config& c) {
  std::string text;
  for (const StreamSpec& stream : c.streams) {
    if (!text.empty()) text += ',';
    text += stream.*Member;
  }
  return text;
}

constexpr SettingBinding stream_keys() {
  return {[](Config& c, const SettingValue& v) { c.streams = parse_stream_keys(text_of(v)); },
          [](const Setting&, const Config& c) { return joined<&StreamSpec::key>(c); }};
}

/// Shown as resolved: each stream's, in STREAM_KEY's order.
constexpr SettingBinding dead_letter_streams() {
  return {to<&Config::dead_letter_stream>().store,
          [](const Setting&, const Config& c) { return joined<&StreamSpec::dead_letter_stream>(c); }};
}

constexpr SettingBinding consumer_name() {
  return {[](Config& c, const SettingValue& v) { c.consumer_name = expand_placeholders(text_of(v)); },
          to<&Config::consumer_name>().show};
}

/// Read by the loader's finalize step: which of the two applies depends on the other and on the output.
constexpr SettingBinding eventhubs_connection_string() {
  return {nullptr, [](const Setting&, const Config& c) {
            return c.eventhubs && !c.eventhubs_entra ? describe_connection_string(*c.eventhubs) : "";
          }};
}

constexpr SettingBinding eventhubs_namespace() {
  return {nullptr, [](const Setting&, const Config& c) {
            if (!c.eventhubs || !c.eventhubs_entra) return std::string();
            const auto& hubs = *c.eventhubs;
            // fmt, not "…" + std::string: GCC 12 at -O3 reports a false -Wrestrict there (GCC bug 105651).
            return hubs.port == 5671 ? hubs.host : fmt::format("{}:{}", hubs.host, hubs.port);
          }};
}

/// Read by the loader's finalize step, for the WebSocket transport only; shown with the password as ***.
constexpr SettingBinding https_proxy() {
  return {nullptr,
          [](const Setting&, const Config& c) { return c.https_proxy ? c.https_proxy->redacted() : ""; }};
}

constexpr SettingBinding no_proxy() {
  return {[](Config& c, const SettingValue& v) { c.no_proxy = NoProxy::parse(text_of(v)); },
          [](const Setting&, const Config& c) { return c.no_proxy.describe(); }};
}

constexpr SettingBinding http_address() {
  return {[](Config& c, const SettingValue& v) { c.http_address = parse_http_address(text_of(v)); },
          [](const Setting&, const Config& c) {
            return c.http_address ? c.http_address->describe() : std::string("off");
          }};
}

}  // namespace custom

constexpr std::array kSettings = {
    Setting{.variable = "REDIS_URL",
            .group = "Redis",
            .default_note = "required",
            .help = "redis://[user:pass@]host[:port][/db], rediss://… (TLS) or unix:///path/to.sock; "
                    "password hidden",
            .binding = custom::redis_url()},
    Setting{.variable = "REDIS_USERNAME",
            .group = "Redis",
            .default_note = "from REDIS_URL",
            .help = "ACL user; overrides the URL's",
            .binding = override_of<&Config::redis, &RedisEndpoint::username>()},
    Setting{.variable = "REDIS_PASSWORD",
            .group = "Redis",
            .default_note = "from REDIS_URL",
            .help = "password; overrides the URL's",
            .secret = true,
            .binding = override_of<&Config::redis, &RedisEndpoint::password>()},
    Setting{
        .variable = "REDIS_AUTH",
        .group = "Redis",
        .kind = K::Choice,
        .default_value = "password",
        .choices = kRedisAuth,
        .help = "password: REDIS_PASSWORD or the URL's; entra: a Microsoft Entra ID token as the password",
        .binding = to<&Config::redis_entra>()},
    Setting{.variable = "REDIS_TLS_CA_FILE",
            .group = "Redis",
            .kind = K::Path,
            .default_note = "system store",
            .help = "CA bundle (PEM) that signs the server's certificate",
            .binding = to<&Config::redis_tls, &RedisTlsOptions::ca_file>()},
    Setting{.variable = "REDIS_TLS_CERT_FILE",
            .group = "Redis",
            .kind = K::Path,
            .help = "client certificate (PEM), with REDIS_TLS_KEY_FILE",
            .binding = to<&Config::redis_tls, &RedisTlsOptions::cert_file>()},
    Setting{.variable = "REDIS_TLS_KEY_FILE",
            .group = "Redis",
            .kind = K::Path,
            .help = "client private key (PEM), with REDIS_TLS_CERT_FILE",
            .binding = to<&Config::redis_tls, &RedisTlsOptions::key_file>()},
    Setting{.variable = "REDIS_TLS_SERVER_NAME",
            .group = "Redis",
            .default_note = "the URL's host",
            .help = "name sent as SNI and verified",
            .binding = to<&Config::redis_tls, &RedisTlsOptions::server_name>()},
    Setting{.variable = "REDIS_TLS_INSECURE",
            .group = "Redis",
            .kind = K::Bool,
            .default_value = "false",
            .help = "true skips certificate verification (warns)",
            .binding = to<&Config::redis_tls, &RedisTlsOptions::insecure>()},
    Setting{.variable = "REDIS_CLUSTER",
            .group = "Redis",
            .kind = K::Bool,
            .default_value = "false",
            .help = "true: REDIS_URL names any Redis Cluster node; connect to the primary of STREAM_KEY's slot",
            .binding = to<&Config::redis_cluster>()},
    Setting{.variable = "REDIS_CLUSTER_NODES",
            .group = "Redis",
            .help = "with REDIS_CLUSTER: more nodes to ask for the slot map when REDIS_URL's is down: "
                    "host[:port],… (port: REDIS_URL's)",
            .binding = custom::host_list<&Config::redis_cluster_nodes>()},
    Setting{.variable = "REDIS_SENTINELS",
            .group = "Redis",
            .help = "Sentinel: host[:port],… (port 26379); connect to the primary they name, with REDIS_URL's "
                    "scheme, credentials and database (its host is not used)",
            .binding = custom::host_list<&Config::redis_sentinels>()},
    Setting{.variable = "REDIS_SENTINEL_MASTER",
            .group = "Redis",
            .help = "the master name the sentinels monitor; required with REDIS_SENTINELS",
            .binding = to<&Config::redis_sentinel_master>()},
    Setting{.variable = "REDIS_SENTINEL_USERNAME",
            .group = "Redis",
            .help = "ACL user of the sentinels",
            .binding = to<&Config::redis_sentinel_username>()},
    Setting{.variable = "REDIS_SENTINEL_PASSWORD",
            .group = "Redis",
            .help = "password of the sentinels (requirepass of sentinel.conf)",
            .secret = true,
            .binding = to<&Config::redis_sentinel_password>()},
    Setting{.variable = "STREAM_KEY",
            .group = "Stream",
            .default_note = "required",
            .help = "the Redis stream to read, or several: a,b,c (each its own reader, one output)",
            .binding = custom::stream_keys()},
    Setting{.variable = "CONSUMER_GROUP_NAME",
            .group = "Stream",
            .default_note = "required",
            .help = "consumer group, created with MKSTREAM if missing",
            .binding = to<&Config::consumer_group>()},
    Setting{.variable = "CONSUMER_NAME",
            .group = "Stream",
            .default_value = "connector-instance-{PID}",
            .help = "consumer name; {PID} and {HOSTNAME} expand",
            .binding = custom::consumer_name()},
    Setting{.variable = "GROUP_START_ID",
            .group = "Stream",
            .default_value = "$",
            .help = "where a new group starts: $ new entries, 0 everything, or an ID",
            .binding = to<&Config::group_start_id>()},
    Setting{.variable = "DEAD_LETTER_STREAM",
            .group = "Stream",
            .default_note = "<STREAM_KEY>:dead-letter",
            .help = "stream for entries that cannot be sent (by default one per stream)",
            .binding = custom::dead_letter_streams()},
    Setting{.variable = "MAX_DELIVERY_ATTEMPTS",
            .group = "Stream",
            .kind = K::Number,
            .default_value = "10",
            .min = 1,
            .max = 2147483647,
            .help = "deliveries before an entry is dead-lettered (>= 1)",
            .binding = to<&Config::tuning, &DeliveryTuning::max_delivery_attempts>()},
    Setting{.variable = "MESSAGE_BODY_FIELD",
            .group = "Stream",
            .help = "field sent raw as the body; default: all fields as JSON",
            .binding = to<&Config::message_body_field>()},
    Setting{.variable = "OUTPUT_ADAPTER_TYPE",
            .group = "Output",
            .kind = K::Choice,
            .default_value = "LOCAL_FILE",
            .choices = kOutputTypes,
            .help = "where entries go: files, Azure Event Hubs, or nowhere (confirmed at once)",
            .binding = to<&Config::output>()},
    Setting{.variable = "OUTPUT_DIRECTORY",
            .group = "Output",
            .kind = K::Path,
            .default_value = "./output",
            .help = "LOCAL_FILE: directory for <entry-id>.json files",
            .binding = to<&Config::output_directory>()},
    Setting{.variable = "OUTPUT_FSYNC",
            .group = "Output",
            .kind = K::Bool,
            .default_value = "true",
            .help = "LOCAL_FILE: make files durable before acking",
            .binding = to<&Config::output_fsync>()},
    Setting{.variable = "OUTPUT_LAYOUT",
            .group = "Output",
            .kind = K::Choice,
            .default_value = "flat",
            .choices = kOutputLayouts,
            .help = "LOCAL_FILE: flat: <id>.json; hourly: YYYY/MM/DD/HH/<id>.json (UTC)",
            .binding = to<&Config::output_layout>()},
    Setting{.variable = "OUTPUT_WRITERS",
            .group = "Output",
            .kind = K::Number,
            .default_value = "2",
            .min = 1,
            .max = 32,
            .help = "LOCAL_FILE: threads writing files, 1-32",
            .binding = to<&Config::output_writers>()},
    Setting{.variable = "EVENT_HUB_CONNECTION_STRING",
            .group = "Event Hubs",
            .default_note = "required for EVENT_HUBS",
            .help = "Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]",
            .secret = true,
            .binding = custom::eventhubs_connection_string()},
    Setting{
        .variable = "EVENT_HUB_FULLY_QUALIFIED_NAMESPACE",
        .group = "Event Hubs",
        .help =
            "<namespace>.servicebus.windows.net[:port]: Microsoft Entra ID instead of a connection string",
        .binding = custom::eventhubs_namespace()},
    Setting{.variable = "EVENT_HUB_NAME",
            .group = "Event Hubs",
            .default_note = "EntityPath",
            .help = "event hub; must match EntityPath when both are set",
            .binding = to<&Config::event_hub_name>()},
    Setting{.variable = "EVENT_HUB_PARTITION_ID",
            .group = "Event Hubs",
            .help = "send everything to this partition",
            .binding = to<&Config::partition_id>()},
    Setting{.variable = "PARTITION_KEY_FIELD",
            .group = "Event Hubs",
            .help = "field whose value is the partition key",
            .binding = to<&Config::partition_key_field>()},
    Setting{.variable = "EVENT_HUBS_TLS_CA_FILE",
            .group = "Event Hubs",
            .kind = K::Path,
            .default_note = "system store",
            .help = "extra CA (PEM) for the Event Hubs endpoint",
            .binding = to<&Config::eventhubs_ca_file>()},
    Setting{
        .variable = "EVENT_HUBS_SENDER_LINKS",
        .group = "Event Hubs",
        .kind = K::Number,
        .default_value = "1",
        .min = 1,
        .max = 32,
        .help = "sender links, 1-32; same partition key, same link (order kept); more for a long round trip",
        .binding = to<&Config::eventhubs_sender_links>()},
    Setting{.variable = "EVENT_HUBS_TRANSPORT",
            .group = "Event Hubs",
            .kind = K::Choice,
            .default_value = "amqp",
            .choices = kEventHubsTransports,
            .help = "amqp: AMQPS on port 5671; websockets: AMQP in a WebSocket on port 443 (wss://), through "
                    "HTTPS_PROXY when set",
            .binding = to<&Config::eventhubs_transport>()},
    Setting{.variable = "EVENT_HUBS_BATCHING",
            .group = "Event Hubs",
            .kind = K::Bool,
            .default_value = "true",
            .help = "true: consecutive events for the same partition key (or partition) share one delivery, "
                    "an Event Hubs batch as the SDKs send it; false: one delivery per event, for diagnosis",
            .binding = to<&Config::eventhubs_batching>()},
    Setting{.variable = "HTTPS_PROXY",
            .alias = "https_proxy",
            .group = "Event Hubs",
            .help = "websockets only: http://[user:password@]host[:port] (port 80), the proxy asked to "
                    "CONNECT; also read as https_proxy; password hidden",
            .secret = true,
            .binding = custom::https_proxy()},
    Setting{.variable = "NO_PROXY",
            .alias = "no_proxy",
            .group = "Event Hubs",
            .help = "hosts reached without HTTPS_PROXY: names or domain suffixes (.example.com), "
                    "comma-separated, * for all; also read as no_proxy",
            .binding = custom::no_proxy()},
    Setting{.variable = "AZURE_TENANT_ID",
            .group = "Microsoft Entra ID",
            .help = "tenant of the app registration or workload identity",
            .binding = to<&Config::entra, &EntraSettings::tenant_id>()},
    Setting{.variable = "AZURE_CLIENT_ID",
            .group = "Microsoft Entra ID",
            .help = "client ID of the app registration, workload identity or user-assigned managed identity",
            .binding = to<&Config::entra, &EntraSettings::client_id>()},
    Setting{.variable = "AZURE_CLIENT_SECRET",
            .group = "Microsoft Entra ID",
            .help = "client secret (ClientSecretCredential)",
            .secret = true,
            .binding = to<&Config::entra, &EntraSettings::client_secret>()},
    Setting{.variable = "AZURE_FEDERATED_TOKEN_FILE",
            .group = "Microsoft Entra ID",
            .kind = K::Path,
            .help = "workload identity: the projected service account token, read at every refresh",
            .binding = to<&Config::entra, &EntraSettings::federated_token_file>()},
    Setting{.variable = "AZURE_AUTHORITY_HOST",
            .group = "Microsoft Entra ID",
            .default_value = "https://login.microsoftonline.com/",
            .help = "Entra ID authority (sovereign clouds)",
            .binding = to<&Config::entra, &EntraSettings::authority_host>()},
    Setting{.variable = "IDENTITY_ENDPOINT",
            .group = "Microsoft Entra ID",
            .help = "managed identity endpoint (App Service, Container Apps)",
            .binding = to<&Config::entra, &EntraSettings::identity_endpoint>()},
    Setting{.variable = "IDENTITY_HEADER",
            .group = "Microsoft Entra ID",
            .help = "header value for IDENTITY_ENDPOINT",
            .secret = true,
            .binding = to<&Config::entra, &EntraSettings::identity_header>()},
    Setting{.variable = "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            .group = "Microsoft Entra ID",
            .default_value = "http://169.254.169.254",
            .help = "instance metadata service (IMDS) host for managed identity",
            .binding = to<&Config::entra, &EntraSettings::imds_host>()},
    Setting{.variable = "AZURE_IDENTITY_TLS_CA_FILE",
            .group = "Microsoft Entra ID",
            .kind = K::Path,
            .default_note = "system store",
            .help = "extra CA (PEM) for the token endpoint, added to the system store",
            .binding = to<&Config::entra, &EntraSettings::ca_file>()},
    Setting{.variable = "ENTRA_TOKEN_REFRESH_MARGIN_MS",
            .group = "Microsoft Entra ID",
            .kind = K::Millis,
            .default_value = "600000",
            .min = 1,
            .max = kMaxMillis,
            .help = "replace a token this long before it expires (or halfway, if earlier); > POLL_TIMEOUT_MS",
            .binding = to<&Config::entra, &EntraSettings::refresh_margin>()},
    Setting{.variable = "BATCH_SIZE",
            .group = "Tuning",
            .kind = K::Number,
            .default_value = "100",
            .min = 1,
            .max = 10000,
            .help = "entries per read, 1-10000",
            .binding = to<&Config::tuning, &DeliveryTuning::batch_size>()},
    Setting{.variable = "MAX_IN_FLIGHT_BATCHES",
            .group = "Tuning",
            .kind = K::Number,
            .default_value = "4",
            .min = 1,
            .max = 64,
            .help = "batches with the output at once, 1-64",
            .binding = to<&Config::tuning, &DeliveryTuning::max_in_flight_batches>()},
    Setting{.variable = "POLL_TIMEOUT_MS",
            .group = "Tuning",
            .kind = K::Millis,
            .default_value = "5000",
            .min = 1,
            .max = kMaxMillis,
            .help = "XREADGROUP BLOCK in ms (>= 1)",
            .binding = to<&Config::tuning, &DeliveryTuning::poll_timeout>()},
    Setting{.variable = "RETRY_DELAY_MS",
            .group = "Tuning",
            .kind = K::Millis,
            .default_value = "5000",
            .min = 1,
            .max = kMaxMillis,
            .help = "base of the capped exponential back-off, ms",
            .binding = to<&Config::tuning, &DeliveryTuning::retry_delay>()},
    Setting{.variable = "SHUTDOWN_GRACE_PERIOD_MS",
            .group = "Tuning",
            .kind = K::Millis,
            .default_value = "2000",
            .min = 1,
            .max = kMaxMillis,
            .help = "time to finish in-flight work on shutdown, ms",
            .binding = to<&Config::tuning, &DeliveryTuning::shutdown_grace>()},
    Setting{.variable = "PENDING_MESSAGE_CLAIM_INTERVAL_MS",
            .group = "Tuning",
            .kind = K::Millis,
            .default_value = "30000",
            .min = 1,
            .max = kMaxMillis,
            .help = "how often to claim idle entries, ms",
            .binding = to<&Config::tuning, &DeliveryTuning::claim_interval>()},
    Setting{.variable = "PENDING_MESSAGE_MIN_IDLE_MS",
            .group = "Tuning",
            .kind = K::Millis,
            .default_value = "60000",
            .min = 1,
            .max = kMaxMillis,
            .help = "idle time before an entry is claimed, ms",
            .binding = to<&Config::tuning, &DeliveryTuning::claim_min_idle>()},
    Setting{.variable = "HTTP_ADDRESS",
            .group = "Monitoring",
            .default_value = "0.0.0.0:9464",
            .help = "host:port or [ipv6]:port of /metrics, /healthz and /readyz; off disables",
            .binding = custom::http_address()},
    Setting{.variable = "STATS_INTERVAL_MS",
            .group = "Monitoring",
            .kind = K::Millis,
            .default_value = "60000",
            .min = 0,
            .max = kMaxMillis,
            .help = "how often the stats log line is written, ms; 0 = never",
            .binding = to<&Config::stats_interval>()},
    Setting{.variable = "LOG_LEVEL",
            .group = "Logging",
            .kind = K::Choice,
            .default_value = "info",
            .choices = kLogLevels,
            .help = "the least severe level written",
            .binding = to<&Config::log_level>()},
    Setting{.variable = "LOG_FORMAT",
            .group = "Logging",
            .kind = K::Choice,
            .default_value = "json",
            .choices = kLogFormats,
            .help = "json: pino lines; pretty: for people",
            .binding = to<&Config::log_format>()},
};

}  // namespace

std::span<const Setting> settings() { return kSettings; }

const Setting& setting(std::string_view variable) {
  for (const auto& row : kSettings) {
    if (row.variable == variable) return row;
  }
  throw std::logic_error("no setting named " + std::string(variable));
}

std::string stream_keys_text(const Config& config) { return custom::joined<&StreamSpec::key>(config); }

}  // namespace connector
