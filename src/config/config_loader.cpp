#include "config/config_loader.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/errors.hpp"
#include "config/env_file.hpp"
#include "config/eventhubs_connection_string.hpp"
#include "config/http_address.hpp"
#include "config/redis_url.hpp"
#include "config/text.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"

extern char** environ;

namespace connector {
namespace {

constexpr long long kMaxMillis = 2147483647;  // ~24.8 days: fits every timer API we hand it to

/// One row of DESIGN.md's configuration table; the flag is the variable in kebab case.
struct Setting {
  std::string_view variable;
  std::string_view group;
  std::string_view default_text;  // empty: no default; "required" for required settings
  std::string_view help;
  bool secret = false;  // never printed; --check-config shows "***"
};

constexpr std::array kSettings = {
    Setting{
        "REDIS_URL", "Redis", "required",
        "redis://[user:pass@]host[:port][/db], rediss://… (TLS) or unix:///path/to.sock; password hidden"},
    Setting{"REDIS_USERNAME", "Redis", "from REDIS_URL", "ACL user; overrides the URL's"},
    Setting{"REDIS_PASSWORD", "Redis", "from REDIS_URL", "password; overrides the URL's", true},
    Setting{"REDIS_AUTH", "Redis", "password",
            "password (REDIS_PASSWORD or the URL's) or entra (Microsoft Entra ID token as the password)"},
    Setting{"REDIS_TLS_CA_FILE", "Redis", "system store",
            "CA bundle (PEM) that signs the server's certificate"},
    Setting{"REDIS_TLS_CERT_FILE", "Redis", "", "client certificate (PEM), with REDIS_TLS_KEY_FILE"},
    Setting{"REDIS_TLS_KEY_FILE", "Redis", "", "client private key (PEM), with REDIS_TLS_CERT_FILE"},
    Setting{"REDIS_TLS_SERVER_NAME", "Redis", "the URL's host", "name sent as SNI and verified"},
    Setting{"REDIS_TLS_INSECURE", "Redis", "false", "true skips certificate verification (warns)"},
    Setting{"STREAM_KEY", "Stream", "required", "the Redis stream to read"},
    Setting{"CONSUMER_GROUP_NAME", "Stream", "required", "consumer group, created with MKSTREAM if missing"},
    Setting{"CONSUMER_NAME", "Stream", "connector-instance-{PID}",
            "consumer name; {PID} and {HOSTNAME} expand"},
    Setting{"GROUP_START_ID", "Stream", "$",
            "where a new group starts: $ new entries, 0 everything, or an ID"},
    Setting{"DEAD_LETTER_STREAM", "Stream", "<STREAM_KEY>:dead-letter",
            "stream for entries that cannot be sent"},
    Setting{"MAX_DELIVERY_ATTEMPTS", "Stream", "10", "deliveries before an entry is dead-lettered (>= 1)"},
    Setting{"MESSAGE_BODY_FIELD", "Stream", "", "field sent raw as the body; default: all fields as JSON"},
    Setting{"OUTPUT_ADAPTER_TYPE", "Output", "LOCAL_FILE", "LOCAL_FILE, EVENT_HUBS or BLACKHOLE"},
    Setting{"OUTPUT_DIRECTORY", "Output", "./output", "LOCAL_FILE: directory for <entry-id>.json files"},
    Setting{"OUTPUT_FSYNC", "Output", "true", "LOCAL_FILE: make files durable before acking"},
    Setting{"OUTPUT_LAYOUT", "Output", "flat",
            "LOCAL_FILE: flat (<id>.json) or hourly (YYYY/MM/DD/HH/<id>.json, UTC)"},
    Setting{"OUTPUT_WRITERS", "Output", "2", "LOCAL_FILE: threads writing files, 1-32"},
    Setting{"EVENT_HUB_CONNECTION_STRING", "Event Hubs", "required for EVENT_HUBS",
            "Endpoint=sb://…;SharedAccessKeyName=…;SharedAccessKey=…[;EntityPath=…]", true},
    Setting{"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", "Event Hubs", "",
            "<namespace>.servicebus.windows.net[:port]: Microsoft Entra ID instead of a connection string"},
    Setting{"EVENT_HUB_NAME", "Event Hubs", "EntityPath",
            "event hub; must match EntityPath when both are set"},
    Setting{"EVENT_HUB_PARTITION_ID", "Event Hubs", "", "send everything to this partition"},
    Setting{"PARTITION_KEY_FIELD", "Event Hubs", "", "field whose value is the partition key"},
    Setting{"EVENT_HUBS_TLS_CA_FILE", "Event Hubs", "system store",
            "extra CA (PEM) for the Event Hubs endpoint"},
    Setting{"EVENT_HUBS_SENDER_LINKS", "Event Hubs", "1",
            "sender links, 1-32; same partition key, same link (order kept); more for a long round trip"},
    Setting{"AZURE_TENANT_ID", "Microsoft Entra ID", "",
            "tenant of the app registration or workload identity"},
    Setting{"AZURE_CLIENT_ID", "Microsoft Entra ID", "",
            "client ID of the app registration, workload identity or user-assigned managed identity"},
    Setting{"AZURE_CLIENT_SECRET", "Microsoft Entra ID", "", "client secret (ClientSecretCredential)", true},
    Setting{"AZURE_FEDERATED_TOKEN_FILE", "Microsoft Entra ID", "",
            "workload identity: the projected service account token, read at every refresh"},
    Setting{"AZURE_AUTHORITY_HOST", "Microsoft Entra ID", "https://login.microsoftonline.com/",
            "Entra ID authority (sovereign clouds)"},
    Setting{"IDENTITY_ENDPOINT", "Microsoft Entra ID", "",
            "managed identity endpoint (App Service, Container Apps)"},
    Setting{"IDENTITY_HEADER", "Microsoft Entra ID", "", "header value for IDENTITY_ENDPOINT", true},
    Setting{"AZURE_POD_IDENTITY_AUTHORITY_HOST", "Microsoft Entra ID", "http://169.254.169.254",
            "instance metadata service (IMDS) host for managed identity"},
    Setting{"AZURE_IDENTITY_TLS_CA_FILE", "Microsoft Entra ID", "system store",
            "extra CA (PEM) for the token endpoint, added to the system store"},
    Setting{"ENTRA_TOKEN_REFRESH_MARGIN_MS", "Microsoft Entra ID", "600000",
            "replace a token this long before it expires (or halfway, if earlier); > POLL_TIMEOUT_MS"},
    Setting{"BATCH_SIZE", "Tuning", "100", "entries per read, 1-10000"},
    Setting{"MAX_IN_FLIGHT_BATCHES", "Tuning", "4", "batches with the output at once, 1-64"},
    Setting{"POLL_TIMEOUT_MS", "Tuning", "5000", "XREADGROUP BLOCK in ms (>= 1)"},
    Setting{"RETRY_DELAY_MS", "Tuning", "5000", "base of the capped exponential back-off, ms"},
    Setting{"SHUTDOWN_GRACE_PERIOD_MS", "Tuning", "2000", "time to finish in-flight work on shutdown, ms"},
    Setting{"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "Tuning", "30000", "how often to claim idle entries, ms"},
    Setting{"PENDING_MESSAGE_MIN_IDLE_MS", "Tuning", "60000", "idle time before an entry is claimed, ms"},
    Setting{"HTTP_ADDRESS", "Monitoring", "0.0.0.0:9464",
            "host:port or [ipv6]:port of /metrics, /healthz and /readyz; off disables"},
    Setting{"STATS_INTERVAL_MS", "Monitoring", "60000",
            "how often the stats log line is written, ms; 0 = never"},
    Setting{"LOG_LEVEL", "Logging", "info", "trace, debug, info, warn, error or fatal"},
    Setting{"LOG_FORMAT", "Logging", "json", "json (pino lines) or pretty"},
};

std::string flag_name(std::string_view variable) {
  std::string flag = "--" + text::to_lower(variable);
  for (auto& c : flag) {
    if (c == '_') c = '-';
  }
  return flag;
}

/// The placeholder --help shows after the flag.
std::string value_kind(const Setting& s) {
  if (s.variable.ends_with("_MS")) return "MS";
  if (s.variable.ends_with("_FILE") || s.variable == "OUTPUT_DIRECTORY") return "PATH";
  if (s.default_text == "true" || s.default_text == "false") return "BOOL";
  if (!s.default_text.empty() && s.default_text.find_first_not_of("0123456789") == std::string_view::npos)
    return "N";
  return "TEXT";
}

std::string in_quotes(std::string_view value) { return "\"" + std::string(value) + "\""; }

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

/// Resolves each setting through the layers and converts it, collecting every problem.
class Resolver {
 public:
  Resolver(std::map<std::string, std::string> flags, const Environment& environment,
           std::map<std::string, std::string> dotenv, std::vector<std::string> problems)
      : flags_(std::move(flags)),
        environment_(environment),
        dotenv_(std::move(dotenv)),
        problems_(std::move(problems)) {}

  std::vector<std::string>& problems() { return problems_; }
  void problem(std::string_view variable, const std::string& what) {
    problems_.push_back(std::string(variable) + ": " + what);
  }

  /// The value from the first layer that has one; an empty variable is unset, an empty flag clears it.
  std::optional<std::string> get(std::string_view variable) const {
    const std::string name(variable);
    if (const auto it = flags_.find(name); it != flags_.end()) {
      return it->second.empty() ? std::nullopt : std::optional(it->second);
    }
    if (const auto it = environment_.find(name); it != environment_.end() && !it->second.empty())
      return it->second;
    if (const auto it = dotenv_.find(name); it != dotenv_.end() && !it->second.empty()) return it->second;
    return std::nullopt;
  }

  std::string string_or(std::string_view variable, std::string fallback) const {
    return get(variable).value_or(std::move(fallback));
  }

  std::string required(std::string_view variable) {
    auto value = get(variable);
    if (!value)
      problem(variable,
              "required, but not set (set " + std::string(variable) + " or " + flag_name(variable) + ")");
    return value.value_or("");
  }

  long long whole_number(std::string_view variable, long long min, long long max, long long fallback,
                         std::string_view unit = "") {
    const auto value = get(variable);
    if (!value) return fallback;
    const auto digits = text::trim(*value);
    long long number = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || number < min ||
        number > max) {
      problem(variable, in_quotes(*value) + " is not a whole number " + std::string(unit) + "from " +
                            std::to_string(min) + " to " + std::to_string(max));
      return fallback;
    }
    return number;
  }

  std::chrono::milliseconds millis(std::string_view variable, long long fallback) {
    return std::chrono::milliseconds(whole_number(variable, 1, kMaxMillis, fallback, "of milliseconds "));
  }

  bool boolean(std::string_view variable, bool fallback) {
    const auto value = get(variable);
    if (!value) return fallback;
    const auto word = text::to_lower(text::trim(*value));
    if (word == "true" || word == "1" || word == "yes") return true;
    if (word == "false" || word == "0" || word == "no") return false;
    problem(variable, in_quotes(*value) + " is not a boolean (true, false, 1, 0, yes or no)");
    return fallback;
  }

  /// Checks that a file named by a setting can be opened for reading.
  void readable_file(std::string_view variable, const std::string& path) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (status.type() == std::filesystem::file_type::not_found) {
      problem(variable, in_quotes(path) + " does not exist");
    } else if (!std::filesystem::is_regular_file(status)) {
      problem(variable, in_quotes(path) + " is not a regular file");
    } else if (::access(path.c_str(), R_OK) != 0) {
      problem(variable, in_quotes(path) + " is not readable by this user");
    }
  }

 private:
  std::map<std::string, std::string> flags_;
  const Environment& environment_;
  std::map<std::string, std::string> dotenv_;
  std::vector<std::string> problems_;
};

void resolve_redis(Resolver& r, Config& config) {
  if (const auto url = r.required("REDIS_URL"); !url.empty()) {
    try {
      config.redis = parse_redis_url(url);
    } catch (const std::invalid_argument& e) {
      r.problem("REDIS_URL", e.what());
    }
  }
  if (auto username = r.get("REDIS_USERNAME")) config.redis.username = std::move(*username);
  if (auto password = r.get("REDIS_PASSWORD")) config.redis.password = std::move(*password);

  auto& tls = config.redis_tls;
  tls.ca_file = r.string_or("REDIS_TLS_CA_FILE", "");
  tls.cert_file = r.string_or("REDIS_TLS_CERT_FILE", "");
  tls.key_file = r.string_or("REDIS_TLS_KEY_FILE", "");
  tls.server_name = r.string_or("REDIS_TLS_SERVER_NAME", "");
  tls.insecure = r.boolean("REDIS_TLS_INSECURE", false);
  if (config.redis.scheme != RedisEndpoint::Scheme::Tls) {
    // REDIS_TLS_INSECURE=false asks for nothing, so a shared .env may keep it.
    for (const auto* name : {"REDIS_TLS_CA_FILE", "REDIS_TLS_CERT_FILE", "REDIS_TLS_KEY_FILE",
                             "REDIS_TLS_SERVER_NAME", "REDIS_TLS_INSECURE"}) {
      if (r.get(name) && !(std::string_view(name) == "REDIS_TLS_INSECURE" && !tls.insecure)) {
        r.problem(name, "set, but REDIS_URL is not a rediss:// (TLS) URL; use rediss:// or unset " +
                            std::string(name));
      }
    }
    return;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    r.problem(tls.key_file.empty() ? "REDIS_TLS_KEY_FILE" : "REDIS_TLS_CERT_FILE",
              "a client certificate needs both REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
  }
  if (!tls.ca_file.empty()) r.readable_file("REDIS_TLS_CA_FILE", tls.ca_file);
  if (!tls.cert_file.empty()) r.readable_file("REDIS_TLS_CERT_FILE", tls.cert_file);
  if (!tls.key_file.empty()) r.readable_file("REDIS_TLS_KEY_FILE", tls.key_file);
}

bool is_stream_id(std::string_view id) {
  const auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 20 && s.find_first_not_of("0123456789") == std::string_view::npos;
  };
  const auto dash = id.find('-');
  return digits(id.substr(0, dash)) && (dash == std::string_view::npos || digits(id.substr(dash + 1)));
}

void resolve_stream(Resolver& r, Config& config) {
  config.stream_key = r.required("STREAM_KEY");
  config.consumer_group = r.required("CONSUMER_GROUP_NAME");
  config.consumer_name = expand_placeholders(r.string_or("CONSUMER_NAME", "connector-instance-{PID}"));
  config.group_start_id = r.string_or("GROUP_START_ID", "$");
  if (config.group_start_id != "$" && !is_stream_id(config.group_start_id)) {
    r.problem("GROUP_START_ID",
              in_quotes(config.group_start_id) +
                  " is not $ (new entries), 0 (everything) or a stream ID like 1700000000000-0");
  }
  config.dead_letter_stream = r.string_or("DEAD_LETTER_STREAM", config.stream_key + ":dead-letter");
  if (!config.stream_key.empty() && config.dead_letter_stream == config.stream_key) {
    r.problem("DEAD_LETTER_STREAM", in_quotes(config.dead_letter_stream) +
                                        " is STREAM_KEY itself; dead letters would be read again");
  }
  config.max_delivery_attempts =
      static_cast<unsigned>(r.whole_number("MAX_DELIVERY_ATTEMPTS", 1, 2147483647, 10));
  config.message_body_field = r.get("MESSAGE_BODY_FIELD");
}

/// EVENT_HUB_FULLY_QUALIFIED_NAMESPACE: "ns.servicebus.windows.net[:port]" (an "sb://" prefix and a
/// trailing "/" are tolerated), always AMQPS; tokens come from Microsoft Entra ID.
void resolve_eventhubs_namespace(Resolver& r, Config& config, std::string_view value) {
  std::string_view host = text::trim(value);
  if (host.starts_with("sb://")) host.remove_prefix(5);
  while (host.ends_with("/")) host.remove_suffix(1);
  EventHubsConnectionString endpoint;
  if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    const auto digits = host.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || port == 0 ||
        port > 65535) {
      r.problem("EVENT_HUB_FULLY_QUALIFIED_NAMESPACE", in_quotes(value) + " has no valid port after ':'");
      return;
    }
    endpoint.port = static_cast<std::uint16_t>(port);
    host = host.substr(0, colon);
  }
  if (host.empty() || host.find_first_of("/?#@; ") != std::string_view::npos) {
    r.problem("EVENT_HUB_FULLY_QUALIFIED_NAMESPACE",
              in_quotes(value) + " is not a host name like <namespace>.servicebus.windows.net");
    return;
  }
  endpoint.host = std::string(host);
  endpoint.endpoint = "sb://" + endpoint.host + "/";
  config.eventhubs = std::move(endpoint);
  config.eventhubs_entra = true;
  if (config.event_hub_name.empty()) {
    r.problem("EVENT_HUB_NAME", "required with EVENT_HUB_FULLY_QUALIFIED_NAMESPACE");
  }
}

void resolve_eventhubs(Resolver& r, Config& config) {
  config.event_hub_name = r.string_or("EVENT_HUB_NAME", "");
  config.partition_id = r.get("EVENT_HUB_PARTITION_ID");
  config.partition_key_field = r.get("PARTITION_KEY_FIELD");
  config.eventhubs_ca_file = r.string_or("EVENT_HUBS_TLS_CA_FILE", "");
  config.eventhubs_sender_links = static_cast<std::size_t>(r.whole_number("EVENT_HUBS_SENDER_LINKS", 1, 32, 1));
  if (config.partition_id && config.partition_key_field) {
    r.problem(
        "EVENT_HUB_PARTITION_ID",
        "set together with PARTITION_KEY_FIELD; an event goes to one partition or by key, set only one");
  }
  if (config.output != OutputType::EventHubs) return;

  if (const auto fqns = r.get("EVENT_HUB_FULLY_QUALIFIED_NAMESPACE")) {
    if (r.get("EVENT_HUB_CONNECTION_STRING")) {
      r.problem(
          "EVENT_HUB_FULLY_QUALIFIED_NAMESPACE",
          "set together with EVENT_HUB_CONNECTION_STRING; use the namespace (Microsoft Entra ID) or the "
          "connection string (SAS), not both");
      return;
    }
    resolve_eventhubs_namespace(r, config, *fqns);
    return;
  }
  const auto connection_string = r.required("EVENT_HUB_CONNECTION_STRING");
  if (!connection_string.empty()) {
    try {
      config.eventhubs = parse_eventhubs_connection_string(connection_string);
    } catch (const std::invalid_argument& e) {
      r.problem("EVENT_HUB_CONNECTION_STRING", e.what());
    }
  }
  if (config.eventhubs) {
    const auto& entity_path = config.eventhubs->entity_path;
    // Hub names are case-insensitive in the service; the .NET SDK compares them that way too.
    if (!config.event_hub_name.empty() && !entity_path.empty() &&
        !text::iequals(config.event_hub_name, entity_path)) {
      r.problem("EVENT_HUB_NAME", in_quotes(config.event_hub_name) +
                                      " differs from the connection string's EntityPath " +
                                      in_quotes(entity_path) + "; unset one or make them equal");
    }
    if (config.event_hub_name.empty()) config.event_hub_name = entity_path;
    if (config.event_hub_name.empty()) {
      r.problem("EVENT_HUB_NAME", "required: the connection string has no EntityPath");
    }
    if (config.eventhubs->use_development_emulator && !config.eventhubs_ca_file.empty()) {
      r.problem("EVENT_HUBS_TLS_CA_FILE",
                "set, but the connection string has UseDevelopmentEmulator=true (plain AMQP, no TLS)");
    }
  }
  if (!config.eventhubs_ca_file.empty()) r.readable_file("EVENT_HUBS_TLS_CA_FILE", config.eventhubs_ca_file);
}

/// azure-identity's variables, checked only when something uses Entra ID (a shared .env may hold them).
void resolve_entra(Resolver& r, Config& config) {
  if (const auto mode = r.get("REDIS_AUTH")) {
    const auto word = text::to_lower(text::trim(*mode));
    if (word == "entra") {
      config.redis_entra = true;
    } else if (word != "password") {
      r.problem("REDIS_AUTH", in_quotes(*mode) + " is not password or entra");
    }
  }
  if (config.redis_entra && !config.redis.password.empty()) {
    r.problem("REDIS_AUTH",
              "entra takes the password from Microsoft Entra ID; unset REDIS_PASSWORD and the "
              "password in REDIS_URL");
  }
  if (!config.eventhubs_entra && !config.redis_entra) return;

  EntraSettings e;
  e.tenant_id = r.string_or("AZURE_TENANT_ID", "");
  e.client_id = r.string_or("AZURE_CLIENT_ID", "");
  e.client_secret = r.string_or("AZURE_CLIENT_SECRET", "");
  e.federated_token_file = r.string_or("AZURE_FEDERATED_TOKEN_FILE", "");
  e.authority_host = r.string_or("AZURE_AUTHORITY_HOST", e.authority_host);
  e.identity_endpoint = r.string_or("IDENTITY_ENDPOINT", "");
  e.identity_header = r.string_or("IDENTITY_HEADER", "");
  e.imds_host = r.string_or("AZURE_POD_IDENTITY_AUTHORITY_HOST", e.imds_host);
  e.ca_file = r.string_or("AZURE_IDENTITY_TLS_CA_FILE", "");
  e.refresh_margin = r.millis("ENTRA_TOKEN_REFRESH_MARGIN_MS", 600000);

  const bool client_flow = !e.client_secret.empty() || !e.federated_token_file.empty();
  if (!e.tenant_id.empty() && e.client_id.empty()) {
    r.problem("AZURE_TENANT_ID",
              "set without AZURE_CLIENT_ID; set the client ID of the app registration or "
              "workload identity too");
  }
  if (client_flow && e.tenant_id.empty()) {
    r.problem("AZURE_TENANT_ID",
              std::string("required with ") +
                  (e.client_secret.empty() ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET"));
  }
  if (client_flow && e.client_id.empty() && e.tenant_id.empty()) {
    r.problem("AZURE_CLIENT_ID",
              std::string("required with ") +
                  (e.client_secret.empty() ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET"));
  }
  if (!e.federated_token_file.empty() && e.client_secret.empty()) {
    r.readable_file("AZURE_FEDERATED_TOKEN_FILE", e.federated_token_file);
  }
  if (e.identity_endpoint.empty() != e.identity_header.empty()) {
    r.problem(
        e.identity_header.empty() ? "IDENTITY_HEADER" : "IDENTITY_ENDPOINT",
        "managed identity on App Service / Container Apps needs both IDENTITY_ENDPOINT and IDENTITY_HEADER");
  }
  if (!e.authority_host.starts_with("https://")) {
    r.problem("AZURE_AUTHORITY_HOST", in_quotes(e.authority_host) + " is not an https:// URL");
  }
  for (const auto& [name, url] : {std::pair{"IDENTITY_ENDPOINT", e.identity_endpoint},
                                  std::pair{"AZURE_POD_IDENTITY_AUTHORITY_HOST", e.imds_host}}) {
    if (!url.empty() && !url.starts_with("http://") && !url.starts_with("https://")) {
      r.problem(name, in_quotes(url) + " is not an http:// or https:// URL");
    }
  }
  if (!e.ca_file.empty()) r.readable_file("AZURE_IDENTITY_TLS_CA_FILE", e.ca_file);
  if (config.redis_entra && e.refresh_margin <= config.poll_timeout) {
    // A reader blocked in XREADGROUP re-authenticates only when its read returns.
    r.problem("ENTRA_TOKEN_REFRESH_MARGIN_MS", "must exceed POLL_TIMEOUT_MS (" +
                                                   std::to_string(config.poll_timeout.count()) +
                                                   ") so that a blocked reader re-authenticates in time");
  }
  config.entra = std::move(e);
}

void resolve_output(Resolver& r, Config& config) {
  if (const auto type = r.get("OUTPUT_ADAPTER_TYPE")) {
    const auto word = text::to_lower(text::trim(*type));
    if (word == "local_file") {
      config.output = OutputType::LocalFile;
    } else if (word == "event_hubs") {
      config.output = OutputType::EventHubs;
    } else if (word == "blackhole") {
      config.output = OutputType::Blackhole;
    } else {
      r.problem("OUTPUT_ADAPTER_TYPE", in_quotes(*type) + " is not LOCAL_FILE, EVENT_HUBS or BLACKHOLE");
    }
  }
  config.output_directory = r.string_or("OUTPUT_DIRECTORY", "./output");
  config.output_fsync = r.boolean("OUTPUT_FSYNC", true);
  if (const auto layout = r.get("OUTPUT_LAYOUT")) {
    const auto word = text::to_lower(text::trim(*layout));
    if (word == "flat") {
      config.output_layout = OutputLayout::Flat;
    } else if (word == "hourly") {
      config.output_layout = OutputLayout::Hourly;
    } else {
      r.problem("OUTPUT_LAYOUT", in_quotes(*layout) + " is not flat or hourly");
    }
  }
  config.output_writers = static_cast<std::size_t>(r.whole_number("OUTPUT_WRITERS", 1, 32, 2));
}

void resolve_tuning_and_logging(Resolver& r, Config& config) {
  config.batch_size = static_cast<std::size_t>(r.whole_number("BATCH_SIZE", 1, 10000, 100));
  config.max_in_flight_batches = static_cast<std::size_t>(r.whole_number("MAX_IN_FLIGHT_BATCHES", 1, 64, 4));
  config.poll_timeout = r.millis("POLL_TIMEOUT_MS", 5000);
  config.retry_delay = r.millis("RETRY_DELAY_MS", 5000);
  config.shutdown_grace = r.millis("SHUTDOWN_GRACE_PERIOD_MS", 2000);
  config.claim_interval = r.millis("PENDING_MESSAGE_CLAIM_INTERVAL_MS", 30000);
  config.claim_min_idle = r.millis("PENDING_MESSAGE_MIN_IDLE_MS", 60000);

  if (const auto address = r.get("HTTP_ADDRESS")) {
    try {
      config.http_address = parse_http_address(*address);
    } catch (const std::invalid_argument& e) {
      r.problem("HTTP_ADDRESS", e.what());
    }
  }
  config.stats_interval = std::chrono::milliseconds(
      r.whole_number("STATS_INTERVAL_MS", 0, kMaxMillis, 60000, "of milliseconds (0 = off) "));

  if (const auto level = r.get("LOG_LEVEL")) {
    if (const auto parsed = parse_log_level(text::to_lower(text::trim(*level)))) {
      config.log_level = *parsed;
    } else {
      r.problem("LOG_LEVEL", in_quotes(*level) + " is not trace, debug, info, warn, error or fatal");
    }
  }
  if (const auto format = r.get("LOG_FORMAT")) {
    const auto word = text::to_lower(text::trim(*format));
    if (word == "json") {
      config.log_format = LogFormat::Json;
    } else if (word == "pretty") {
      config.log_format = LogFormat::Pretty;
    } else {
      r.problem("LOG_FORMAT", in_quotes(*format) + " is not json or pretty");
    }
  }
}

/// Reports what CLI11 left unparsed without echoing values: a stray word may be a secret.
void report_extras(const std::vector<std::string>& extras, std::vector<std::string>& problems) {
  std::size_t stray_words = 0;
  for (const auto& arg : extras) {
    if (arg.size() > 1 && arg.starts_with("-")) {
      problems.push_back(arg.substr(0, arg.find('=')) + ": unknown option (see --help)");
    } else {
      ++stray_words;
    }
  }
  if (stray_words > 0) {
    problems.push_back("command line: " + std::to_string(stray_words) +
                       " unexpected argument(s), not shown; every setting is given as --option VALUE");
  }
}

}  // namespace

Environment current_environment() {
  Environment environment;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) continue;
    environment.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }
  return environment;
}

CommandLine parse_command_line(int argc, const char* const argv[], const Environment& environment) {
  CLI::App app{"Moves every entry of a Redis stream, through a consumer group, to Azure Event Hubs or files.",
               "redis-eventhubs-connector"};
  app.allow_extras();  // unknown options become problems below, reported with the others
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.get_formatter()->column_width(44);
  app.footer(
      "Each setting comes from its --flag, else its environment variable, else the .env file, else its\n"
      "default. A variable that is set but empty counts as unset; --flag \"\" clears the setting.\n"
      "Exit status: 0 clean shutdown, 1 fatal error, 2 invalid configuration, 3 cannot connect at startup.");

  bool check_config = false;
  bool version = false;
  std::string env_file;
  app.add_flag("--check-config", check_config,
               "validate the configuration, print it (secrets hidden) and exit");
  app.add_flag("--version", version, "print the version and exit");
  auto* env_file_option =
      app.add_option("--env-file", env_file, "read settings from this file instead of ./.env")
          ->group("Settings file");  // not "Files": help2man would make that the FILES section

  std::array<std::string, kSettings.size()> raw;
  std::array<CLI::Option*, kSettings.size()> options{};
  for (std::size_t i = 0; i < kSettings.size(); ++i) {
    const auto& s = kSettings[i];
    std::string description(s.help);
    description += " [" + std::string(s.variable);
    description += s.default_text == "required" ? ", required"
                   : s.default_text.empty()     ? ", default: none"
                                                : ", default: " + std::string(s.default_text);
    if (s.secret) description += ", secret";
    description += "]";
    options[i] = app.add_option(flag_name(s.variable), raw[i], description)
                     ->group(std::string(s.group))
                     ->type_name(value_kind(s));
  }

  std::vector<std::string> problems;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return {CliAction::PrintHelp, {}, app.help()};
  } catch (const CLI::ParseError& e) {
    problems.push_back(std::string("command line: ") + e.what());
  }
  if (version)
    return {CliAction::PrintVersion,
            {},
            "redis-eventhubs-connector " + std::string(build_version()) + " (commit " +
                std::string(build_commit()) + ")\n"};
  report_extras(app.remaining(), problems);

  std::map<std::string, std::string> dotenv;
  const bool explicit_env_file = env_file_option->count() > 0;
  if (explicit_env_file && env_file.empty()) {
    problems.push_back("--env-file: needs a file name");
  } else {
    auto file =
        read_env_file(explicit_env_file ? std::filesystem::path(env_file) : ".env", explicit_env_file);
    problems.insert(problems.end(), file.problems.begin(), file.problems.end());
    for (auto& [key, value] : file.entries) dotenv[key] = std::move(value);
  }

  std::map<std::string, std::string> flags;
  for (std::size_t i = 0; i < kSettings.size(); ++i) {
    if (options[i]->count() > 0) flags.emplace(std::string(kSettings[i].variable), raw[i]);
  }

  Resolver resolver(std::move(flags), environment, std::move(dotenv), std::move(problems));
  CommandLine result;
  result.action = check_config ? CliAction::CheckConfig : CliAction::Run;
  auto& config = result.config;
  resolve_redis(resolver, config);
  resolve_stream(resolver, config);
  resolve_output(resolver, config);
  resolve_eventhubs(resolver, config);
  resolve_tuning_and_logging(resolver, config);
  resolve_entra(resolver, config);
  if (!resolver.problems().empty()) throw ConfigurationError(std::move(resolver.problems()));
  return result;
}

void report_configuration_error(const ConfigurationError& error) {
  if (::isatty(STDERR_FILENO) == 1) {
    std::fprintf(stderr, "%s\n", error.what());
  } else {
    logger().fatal("invalid_configuration", {{"problems", error.problems()}});
  }
}

namespace {
/// REDIS_URL as --check-config shows it: the user, and `***` where the password is, so that the reader
/// sees that one is set.
std::string redis_url_for_display(const RedisEndpoint& endpoint) {
  std::string url = endpoint.describe();
  if (endpoint.username.empty() && endpoint.password.empty()) return url;
  const auto credentials = endpoint.username + (endpoint.password.empty() ? "" : ":***") + "@";
  return url.insert(url.find("://") + 3, credentials);
}
}  // namespace

std::string describe_config(const Config& c) {
  const auto optional = [](const std::optional<std::string>& value) { return value.value_or(""); };
  const auto ms = [](std::chrono::milliseconds value) { return std::to_string(value.count()); };
  const auto output = c.output == OutputType::EventHubs   ? "EVENT_HUBS"
                      : c.output == OutputType::Blackhole ? "BLACKHOLE"
                                                          : "LOCAL_FILE";
  const std::map<std::string_view, std::string> values = {
      {"REDIS_URL", redis_url_for_display(c.redis)},
      {"REDIS_USERNAME", c.redis.username},
      {"REDIS_PASSWORD", c.redis.password.empty() ? "" : "***"},
      {"REDIS_AUTH", c.redis_entra ? "entra" : "password"},
      {"REDIS_TLS_CA_FILE", c.redis_tls.ca_file},
      {"REDIS_TLS_CERT_FILE", c.redis_tls.cert_file},
      {"REDIS_TLS_KEY_FILE", c.redis_tls.key_file},
      {"REDIS_TLS_SERVER_NAME", c.redis_tls.server_name},
      {"REDIS_TLS_INSECURE", c.redis_tls.insecure ? "true" : "false"},
      {"STREAM_KEY", c.stream_key},
      {"CONSUMER_GROUP_NAME", c.consumer_group},
      {"CONSUMER_NAME", c.consumer_name},
      {"GROUP_START_ID", c.group_start_id},
      {"DEAD_LETTER_STREAM", c.dead_letter_stream},
      {"MAX_DELIVERY_ATTEMPTS", std::to_string(c.max_delivery_attempts)},
      {"MESSAGE_BODY_FIELD", optional(c.message_body_field)},
      {"OUTPUT_ADAPTER_TYPE", output},
      {"OUTPUT_DIRECTORY", c.output_directory.string()},
      {"OUTPUT_FSYNC", c.output_fsync ? "true" : "false"},
      {"OUTPUT_LAYOUT", c.output_layout == OutputLayout::Hourly ? "hourly" : "flat"},
      {"OUTPUT_WRITERS", std::to_string(c.output_writers)},
      {"EVENT_HUB_CONNECTION_STRING",
       c.eventhubs && !c.eventhubs_entra ? describe_connection_string(*c.eventhubs) : ""},
      {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE",
       c.eventhubs_entra
           ? c.eventhubs->host + (c.eventhubs->port == 5671 ? "" : ":" + std::to_string(c.eventhubs->port))
           : ""},
      {"EVENT_HUB_NAME", c.event_hub_name},
      {"EVENT_HUB_PARTITION_ID", optional(c.partition_id)},
      {"PARTITION_KEY_FIELD", optional(c.partition_key_field)},
      {"EVENT_HUBS_TLS_CA_FILE", c.eventhubs_ca_file},
      {"EVENT_HUBS_SENDER_LINKS", std::to_string(c.eventhubs_sender_links)},
      {"BATCH_SIZE", std::to_string(c.batch_size)},
      {"MAX_IN_FLIGHT_BATCHES", std::to_string(c.max_in_flight_batches)},
      {"POLL_TIMEOUT_MS", ms(c.poll_timeout)},
      {"RETRY_DELAY_MS", ms(c.retry_delay)},
      {"SHUTDOWN_GRACE_PERIOD_MS", ms(c.shutdown_grace)},
      {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", ms(c.claim_interval)},
      {"PENDING_MESSAGE_MIN_IDLE_MS", ms(c.claim_min_idle)},
      {"HTTP_ADDRESS", c.http_address ? c.http_address->describe() : "off"},
      {"STATS_INTERVAL_MS", ms(c.stats_interval)},
      {"LOG_LEVEL", std::string(log_level_name(c.log_level))},
      {"LOG_FORMAT", c.log_format == LogFormat::Pretty ? "pretty" : "json"},
  };
  const EntraSettings no_entra;
  const EntraSettings& e = c.entra ? *c.entra : no_entra;
  const std::map<std::string_view, std::string> entra_values = {
      {"AZURE_TENANT_ID", e.tenant_id},
      {"AZURE_CLIENT_ID", e.client_id},
      {"AZURE_CLIENT_SECRET", e.client_secret.empty() ? "" : "***"},
      {"AZURE_FEDERATED_TOKEN_FILE", e.federated_token_file},
      {"AZURE_AUTHORITY_HOST", c.entra ? e.authority_host : ""},
      {"IDENTITY_ENDPOINT", e.identity_endpoint},
      {"IDENTITY_HEADER", e.identity_header.empty() ? "" : "***"},
      {"AZURE_POD_IDENTITY_AUTHORITY_HOST", c.entra ? e.imds_host : ""},
      {"AZURE_IDENTITY_TLS_CA_FILE", e.ca_file},
      {"ENTRA_TOKEN_REFRESH_MARGIN_MS", c.entra ? ms(e.refresh_margin) : ""},
  };
  std::string text;
  for (const auto& setting : kSettings) {
    const auto entra = entra_values.find(setting.variable);
    text += std::string(setting.variable) + "=" +
            (entra != entra_values.end() ? entra->second : values.at(setting.variable)) + "\n";
  }
  // Not a setting: what the settings select, so an operator sees which flow will run.
  if (c.entra) text += "# Microsoft Entra ID credential: " + c.entra->describe() + "\n";
  return text;
}

}  // namespace connector
