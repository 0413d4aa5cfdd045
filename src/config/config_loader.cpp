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
#include <type_traits>
#include <vector>

#include "common/errors.hpp"
#include "config/env_file.hpp"
#include "config/eventhubs_connection_string.hpp"
#include "config/http_address.hpp"
#include "config/redis_url.hpp"
#include "config/settings.hpp"
#include "config/text.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"

extern char** environ;

namespace connector {
namespace {

std::string flag_name(std::string_view variable) {
  std::string flag = "--" + text::to_lower(variable);
  for (auto& c : flag) {
    if (c == '_') c = '-';
  }
  return flag;
}

/// The placeholder --help shows after the flag.
std::string value_kind(const Setting& s) {
  switch (s.kind) {
    case SettingKind::Millis:
      return "MS";
    case SettingKind::Path:
      return "PATH";
    case SettingKind::Bool:
      return "BOOL";
    case SettingKind::Number:
      return "N";
    case SettingKind::Text:
    case SettingKind::Choice:
      break;
  }
  return "TEXT";
}

/// The default as --help writes it after the variable.
std::string help_default(const Setting& s) {
  if (s.required()) return ", required";
  if (s.default_text().empty()) return ", default: none";
  return ", default: " + std::string(s.default_text());
}

std::string in_quotes(std::string_view value) { return "\"" + std::string(value) + "\""; }

/// "a, b or c".
std::string one_of(const std::vector<std::string_view>& words) {
  std::string list;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) list += i + 1 == words.size() ? " or " : ", ";
    list += words[i];
  }
  return list;
}

std::optional<long long> parse_whole_number(std::string_view value, long long min, long long max) {
  const auto digits = text::trim(value);
  long long number = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || number < min ||
      number > max) {
    return std::nullopt;
  }
  return number;
}

std::optional<bool> parse_boolean(std::string_view value) {
  const auto word = text::to_lower(text::trim(value));
  if (word == "true" || word == "1" || word == "yes") return true;
  if (word == "false" || word == "0" || word == "no") return false;
  return std::nullopt;
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

/// The default of a row, converted; a default the row's own validation refuses is a bug in the table.
[[noreturn]] void bad_default(const Setting& row) {
  throw std::logic_error("the settings table's default of " + std::string(row.variable) + " is invalid");
}

/// Resolves each setting through the layers and converts it, collecting every problem. An unset setting
/// takes its row's default (config/settings.cpp), converted as a given value is.
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

  /// The value, else the row's default (empty when it has none).
  std::string text(std::string_view variable) const {
    return get(variable).value_or(std::string(setting(variable).default_value));
  }

  std::string required(std::string_view variable) {
    auto value = get(variable);
    if (!value)
      problem(variable,
              "required, but not set (set " + std::string(variable) + " or " + flag_name(variable) + ")");
    return value.value_or("");
  }

  /// Number and Millis rows: a whole number in the row's range.
  long long whole_number(std::string_view variable) {
    const Setting& row = setting(variable);
    const std::string unit = row.kind != SettingKind::Millis ? ""
                             : row.min == 0                  ? "of milliseconds (0 = off) "
                                                             : "of milliseconds ";
    return converted(
        row, [&row](std::string_view value) { return parse_whole_number(value, row.min, row.max); },
        " is not a whole number " + unit + "from " + std::to_string(row.min) + " to " +
            std::to_string(row.max));
  }

  std::chrono::milliseconds millis(std::string_view variable) {
    return std::chrono::milliseconds(whole_number(variable));
  }

  bool boolean(std::string_view variable) {
    return converted(setting(variable), parse_boolean, " is not a boolean (true, false, 1, 0, yes or no)");
  }

  /// Choice rows: one of `choices` (compared without case); the row's default must be one of them.
  template <typename T>
  T choice(std::string_view variable, std::initializer_list<std::pair<std::string_view, T>> choices) {
    const auto find = [&](std::string_view value) -> std::optional<T> {
      const auto word = text::to_lower(text::trim(value));
      for (const auto& [name, result] : choices) {
        if (text::to_lower(name) == word) return result;
      }
      return std::nullopt;
    };
    std::vector<std::string_view> names;
    for (const auto& entry : choices) names.push_back(entry.first);
    return converted(setting(variable), find, " is not " + one_of(names));
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
  /// The setting's value converted by `parse`, else the row's default converted by it. A value `parse`
  /// refuses is a problem ("<value>" + `refusal`), and the default stands in for it.
  template <typename Parse>
  auto converted(const Setting& row, Parse parse, const std::string& refusal) ->
      typename std::invoke_result_t<Parse, std::string_view>::value_type {
    const auto fallback = parse(row.default_value);
    if (!fallback) bad_default(row);
    const auto value = get(row.variable);
    if (!value) return *fallback;
    if (const auto parsed = parse(*value)) return *parsed;
    problem(row.variable, in_quotes(*value) + refusal);
    return *fallback;
  }

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
  tls.ca_file = r.text("REDIS_TLS_CA_FILE");
  tls.cert_file = r.text("REDIS_TLS_CERT_FILE");
  tls.key_file = r.text("REDIS_TLS_KEY_FILE");
  tls.server_name = r.text("REDIS_TLS_SERVER_NAME");
  tls.insecure = r.boolean("REDIS_TLS_INSECURE");
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
  config.consumer_name = expand_placeholders(r.text("CONSUMER_NAME"));
  config.group_start_id = r.text("GROUP_START_ID");
  if (config.group_start_id != "$" && !is_stream_id(config.group_start_id)) {
    r.problem("GROUP_START_ID",
              in_quotes(config.group_start_id) +
                  " is not $ (new entries), 0 (everything) or a stream ID like 1700000000000-0");
  }
  config.dead_letter_stream = r.get("DEAD_LETTER_STREAM").value_or(config.stream_key + ":dead-letter");
  if (!config.stream_key.empty() && config.dead_letter_stream == config.stream_key) {
    r.problem("DEAD_LETTER_STREAM", in_quotes(config.dead_letter_stream) +
                                        " is STREAM_KEY itself; dead letters would be read again");
  }
  config.tuning.max_delivery_attempts = static_cast<unsigned>(r.whole_number("MAX_DELIVERY_ATTEMPTS"));
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
  config.event_hub_name = r.text("EVENT_HUB_NAME");
  config.partition_id = r.get("EVENT_HUB_PARTITION_ID");
  config.partition_key_field = r.get("PARTITION_KEY_FIELD");
  config.eventhubs_ca_file = r.text("EVENT_HUBS_TLS_CA_FILE");
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

/// REDIS_AUTH: the password is REDIS_PASSWORD (or the URL's), or a Microsoft Entra ID token.
void resolve_redis_auth(Resolver& r, Config& config) {
  config.redis_entra = r.choice<bool>("REDIS_AUTH", {{"password", false}, {"entra", true}});
  if (config.redis_entra && !config.redis.password.empty()) {
    r.problem("REDIS_AUTH",
              "entra takes the password from Microsoft Entra ID; unset REDIS_PASSWORD and the "
              "password in REDIS_URL");
  }
}

EntraSettings read_entra_settings(Resolver& r) {
  EntraSettings e;
  e.tenant_id = r.text("AZURE_TENANT_ID");
  e.client_id = r.text("AZURE_CLIENT_ID");
  e.client_secret = r.text("AZURE_CLIENT_SECRET");
  e.federated_token_file = r.text("AZURE_FEDERATED_TOKEN_FILE");
  e.authority_host = r.text("AZURE_AUTHORITY_HOST");
  e.identity_endpoint = r.text("IDENTITY_ENDPOINT");
  e.identity_header = r.text("IDENTITY_HEADER");
  e.imds_host = r.text("AZURE_POD_IDENTITY_AUTHORITY_HOST");
  e.ca_file = r.text("AZURE_IDENTITY_TLS_CA_FILE");
  e.refresh_margin = r.millis("ENTRA_TOKEN_REFRESH_MARGIN_MS");
  return e;
}

/// The pieces each credential needs come together (DefaultAzureCredential's rules).
void check_entra_credentials(Resolver& r, const EntraSettings& e) {
  const bool client_flow = !e.client_secret.empty() || !e.federated_token_file.empty();
  const std::string client_flow_variable =
      e.client_secret.empty() ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET";
  if (!e.tenant_id.empty() && e.client_id.empty()) {
    r.problem("AZURE_TENANT_ID",
              "set without AZURE_CLIENT_ID; set the client ID of the app registration or "
              "workload identity too");
  }
  if (client_flow && e.tenant_id.empty())
    r.problem("AZURE_TENANT_ID", "required with " + client_flow_variable);
  if (client_flow && e.client_id.empty() && e.tenant_id.empty()) {
    r.problem("AZURE_CLIENT_ID", "required with " + client_flow_variable);
  }
  if (!e.federated_token_file.empty() && e.client_secret.empty()) {
    r.readable_file("AZURE_FEDERATED_TOKEN_FILE", e.federated_token_file);
  }
  if (e.identity_endpoint.empty() != e.identity_header.empty()) {
    r.problem(
        e.identity_header.empty() ? "IDENTITY_HEADER" : "IDENTITY_ENDPOINT",
        "managed identity on App Service / Container Apps needs both IDENTITY_ENDPOINT and IDENTITY_HEADER");
  }
}

/// Where tokens are asked for: URLs of the right scheme, a readable CA file.
void check_entra_endpoints(Resolver& r, const EntraSettings& e) {
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
}

/// azure-identity's variables, checked only when something uses Entra ID (a shared .env may hold them).
void resolve_entra(Resolver& r, Config& config) {
  resolve_redis_auth(r, config);
  if (!config.eventhubs_entra && !config.redis_entra) return;

  EntraSettings e = read_entra_settings(r);
  check_entra_credentials(r, e);
  check_entra_endpoints(r, e);
  if (config.redis_entra && e.refresh_margin <= config.tuning.poll_timeout) {
    // A reader blocked in XREADGROUP re-authenticates only when its read returns.
    r.problem("ENTRA_TOKEN_REFRESH_MARGIN_MS", "must exceed POLL_TIMEOUT_MS (" +
                                                   std::to_string(config.tuning.poll_timeout.count()) +
                                                   ") so that a blocked reader re-authenticates in time");
  }
  config.entra = std::move(e);
}

void resolve_output(Resolver& r, Config& config) {
  config.output = r.choice<OutputType>("OUTPUT_ADAPTER_TYPE", {{"LOCAL_FILE", OutputType::LocalFile},
                                                               {"EVENT_HUBS", OutputType::EventHubs},
                                                               {"BLACKHOLE", OutputType::Blackhole}});
  config.output_directory = r.text("OUTPUT_DIRECTORY");
  config.output_fsync = r.boolean("OUTPUT_FSYNC");
  config.output_layout = r.choice<OutputLayout>(
      "OUTPUT_LAYOUT", {{"flat", OutputLayout::Flat}, {"hourly", OutputLayout::Hourly}});
  config.output_writers = static_cast<std::size_t>(r.whole_number("OUTPUT_WRITERS"));
}

void resolve_tuning(Resolver& r, Config& config) {
  auto& t = config.tuning;
  t.batch_size = static_cast<std::size_t>(r.whole_number("BATCH_SIZE"));
  t.max_in_flight_batches = static_cast<std::size_t>(r.whole_number("MAX_IN_FLIGHT_BATCHES"));
  t.poll_timeout = r.millis("POLL_TIMEOUT_MS");
  t.retry_delay = r.millis("RETRY_DELAY_MS");
  t.shutdown_grace = r.millis("SHUTDOWN_GRACE_PERIOD_MS");
  t.claim_interval = r.millis("PENDING_MESSAGE_CLAIM_INTERVAL_MS");
  t.claim_min_idle = r.millis("PENDING_MESSAGE_MIN_IDLE_MS");
}

void resolve_monitoring_and_logging(Resolver& r, Config& config) {
  try {
    config.http_address = parse_http_address(r.text("HTTP_ADDRESS"));
  } catch (const std::invalid_argument& e) {
    r.problem("HTTP_ADDRESS", e.what());
  }
  config.stats_interval = r.millis("STATS_INTERVAL_MS");
  config.log_level = r.choice<LogLevel>("LOG_LEVEL", {{"trace", LogLevel::Trace},
                                                      {"debug", LogLevel::Debug},
                                                      {"info", LogLevel::Info},
                                                      {"warn", LogLevel::Warn},
                                                      {"error", LogLevel::Error},
                                                      {"fatal", LogLevel::Fatal}});
  config.log_format =
      r.choice<LogFormat>("LOG_FORMAT", {{"json", LogFormat::Json}, {"pretty", LogFormat::Pretty}});
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

/// Every setting through the layers, in the order their problems are reported.
void resolve_all(Resolver& resolver, Config& config) {
  resolve_redis(resolver, config);
  resolve_stream(resolver, config);
  resolve_output(resolver, config);
  resolve_eventhubs(resolver, config);
  resolve_tuning(resolver, config);
  resolve_monitoring_and_logging(resolver, config);
  resolve_entra(resolver, config);
}

/// The command line's parser: the general flags and one option per row of the settings table.
class SettingsCommandLine {
 public:
  SettingsCommandLine()
      : app_("Moves every entry of a Redis stream, through a consumer group, to Azure Event Hubs or files.",
             "redis-eventhubs-connector"),
        raw_(settings().size()),
        options_(settings().size()) {
    app_.allow_extras();  // unknown options become problems below, reported with the others
    app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app_.get_formatter()->column_width(44);
    app_.footer(
        "Each setting comes from its --flag, else its environment variable, else the .env file, else its\n"
        "default. A variable that is set but empty counts as unset; --flag \"\" clears the setting.\n"
        "Exit status: 0 clean shutdown, 1 fatal error, 2 invalid configuration, 3 cannot connect at "
        "startup.");
    app_.add_flag("--check-config", check_config_,
                  "validate the configuration, print it (secrets hidden) and exit");
    app_.add_flag("--version", version_, "print the version and exit");
    env_file_option_ =
        app_.add_option("--env-file", env_file_, "read settings from this file instead of ./.env")
            ->group("Settings file");  // not "Files": help2man would make that the FILES section
    for (std::size_t i = 0; i < settings().size(); ++i) {
      const Setting& s = settings()[i];
      const std::string description = std::string(s.help) + " [" + std::string(s.variable) + help_default(s) +
                                      (s.secret ? ", secret" : "") + "]";
      options_[i] = app_.add_option(flag_name(s.variable), raw_[i], description)
                        ->group(std::string(s.group))
                        ->type_name(value_kind(s));
    }
  }

  /// Parses argv; returns the help text when it asks for help. Problems go to `problems`.
  std::optional<std::string> parse(int argc, const char* const argv[], std::vector<std::string>& problems) {
    try {
      app_.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
      return app_.help();
    } catch (const CLI::ParseError& e) {
      problems.push_back(std::string("command line: ") + e.what());
    }
    return std::nullopt;
  }

  bool check_config() const { return check_config_; }
  bool version() const { return version_; }
  std::vector<std::string> remaining() const { return app_.remaining(); }

  /// The .env layer: ./.env, or the --env-file, with its problems added to `problems`.
  std::map<std::string, std::string> dotenv(std::vector<std::string>& problems) const {
    std::map<std::string, std::string> dotenv;
    const bool explicit_env_file = env_file_option_->count() > 0;
    if (explicit_env_file && env_file_.empty()) {
      problems.push_back("--env-file: needs a file name");
      return dotenv;
    }
    auto file =
        read_env_file(explicit_env_file ? std::filesystem::path(env_file_) : ".env", explicit_env_file);
    problems.insert(problems.end(), file.problems.begin(), file.problems.end());
    for (auto& [key, value] : file.entries) dotenv[key] = std::move(value);
    return dotenv;
  }

  /// The flag layer: the settings given on the command line, by variable.
  std::map<std::string, std::string> flags() const {
    std::map<std::string, std::string> flags;
    for (std::size_t i = 0; i < settings().size(); ++i) {
      if (options_[i]->count() > 0) flags.emplace(std::string(settings()[i].variable), raw_[i]);
    }
    return flags;
  }

 private:
  CLI::App app_;
  bool check_config_ = false;
  bool version_ = false;
  std::string env_file_;
  CLI::Option* env_file_option_ = nullptr;
  std::vector<std::string> raw_;  // CLI11 writes each setting's value here, by row
  std::vector<CLI::Option*> options_;
};

std::string version_text() {
  return "redis-eventhubs-connector " + std::string(build_version()) + " (commit " +
         std::string(build_commit()) + ")\n";
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
  SettingsCommandLine command_line;
  std::vector<std::string> problems;
  if (auto help = command_line.parse(argc, argv, problems))
    return {CliAction::PrintHelp, {}, std::move(*help)};
  if (command_line.version()) return {CliAction::PrintVersion, {}, version_text()};
  report_extras(command_line.remaining(), problems);
  auto dotenv = command_line.dotenv(problems);

  Resolver resolver(command_line.flags(), environment, std::move(dotenv), std::move(problems));
  CommandLine result;
  result.action = command_line.check_config() ? CliAction::CheckConfig : CliAction::Run;
  resolve_all(resolver, result.config);
  if (!resolver.problems().empty()) throw ConfigurationError(std::move(resolver.problems()));
  return result;
}

Config default_config() {
  const Environment nothing;
  Resolver resolver({}, nothing, {}, {});
  Config config;
  resolve_all(resolver, config);  // the problems are the required settings, left empty
  return config;
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

using DisplayValues = std::map<std::string_view, std::string>;

std::string optional_text(const std::optional<std::string>& value) { return value.value_or(""); }
std::string ms_text(std::chrono::milliseconds value) { return std::to_string(value.count()); }
std::string bool_text(bool value) { return value ? "true" : "false"; }
std::string secret_text(const std::string& value) { return value.empty() ? "" : "***"; }

void add_redis_and_stream(const Config& c, DisplayValues& values) {
  values.insert({
      {"REDIS_URL", redis_url_for_display(c.redis)},
      {"REDIS_USERNAME", c.redis.username},
      {"REDIS_PASSWORD", secret_text(c.redis.password)},
      {"REDIS_AUTH", c.redis_entra ? "entra" : "password"},
      {"REDIS_TLS_CA_FILE", c.redis_tls.ca_file},
      {"REDIS_TLS_CERT_FILE", c.redis_tls.cert_file},
      {"REDIS_TLS_KEY_FILE", c.redis_tls.key_file},
      {"REDIS_TLS_SERVER_NAME", c.redis_tls.server_name},
      {"REDIS_TLS_INSECURE", bool_text(c.redis_tls.insecure)},
      {"STREAM_KEY", c.stream_key},
      {"CONSUMER_GROUP_NAME", c.consumer_group},
      {"CONSUMER_NAME", c.consumer_name},
      {"GROUP_START_ID", c.group_start_id},
      {"DEAD_LETTER_STREAM", c.dead_letter_stream},
      {"MAX_DELIVERY_ATTEMPTS", std::to_string(c.tuning.max_delivery_attempts)},
      {"MESSAGE_BODY_FIELD", optional_text(c.message_body_field)},
  });
}

void add_outputs(const Config& c, DisplayValues& values) {
  const auto output = c.output == OutputType::EventHubs   ? "EVENT_HUBS"
                      : c.output == OutputType::Blackhole ? "BLACKHOLE"
                                                          : "LOCAL_FILE";
  const auto& hubs = c.eventhubs;
  values.insert({
      {"OUTPUT_ADAPTER_TYPE", output},
      {"OUTPUT_DIRECTORY", c.output_directory.string()},
      {"OUTPUT_FSYNC", bool_text(c.output_fsync)},
      {"OUTPUT_LAYOUT", c.output_layout == OutputLayout::Hourly ? "hourly" : "flat"},
      {"OUTPUT_WRITERS", std::to_string(c.output_writers)},
      {"EVENT_HUB_CONNECTION_STRING", hubs && !c.eventhubs_entra ? describe_connection_string(*hubs) : ""},
      {"EVENT_HUB_FULLY_QUALIFIED_NAMESPACE",
       c.eventhubs_entra ? hubs->host + (hubs->port == 5671 ? "" : ":" + std::to_string(hubs->port)) : ""},
      {"EVENT_HUB_NAME", c.event_hub_name},
      {"EVENT_HUB_PARTITION_ID", optional_text(c.partition_id)},
      {"PARTITION_KEY_FIELD", optional_text(c.partition_key_field)},
      {"EVENT_HUBS_TLS_CA_FILE", c.eventhubs_ca_file},
  });
}

/// Empty when nothing uses Entra ID: its defaults would only suggest a flow that does not run.
void add_entra(const Config& c, DisplayValues& values) {
  const EntraSettings e = c.entra.value_or(EntraSettings{});
  values.insert({
      {"AZURE_TENANT_ID", e.tenant_id},
      {"AZURE_CLIENT_ID", e.client_id},
      {"AZURE_CLIENT_SECRET", secret_text(e.client_secret)},
      {"AZURE_FEDERATED_TOKEN_FILE", e.federated_token_file},
      {"AZURE_AUTHORITY_HOST", e.authority_host},
      {"IDENTITY_ENDPOINT", e.identity_endpoint},
      {"IDENTITY_HEADER", secret_text(e.identity_header)},
      {"AZURE_POD_IDENTITY_AUTHORITY_HOST", e.imds_host},
      {"AZURE_IDENTITY_TLS_CA_FILE", e.ca_file},
      {"ENTRA_TOKEN_REFRESH_MARGIN_MS", c.entra ? ms_text(e.refresh_margin) : ""},
  });
}

void add_tuning_and_monitoring(const Config& c, DisplayValues& values) {
  const auto& t = c.tuning;
  values.insert({
      {"BATCH_SIZE", std::to_string(t.batch_size)},
      {"MAX_IN_FLIGHT_BATCHES", std::to_string(t.max_in_flight_batches)},
      {"POLL_TIMEOUT_MS", ms_text(t.poll_timeout)},
      {"RETRY_DELAY_MS", ms_text(t.retry_delay)},
      {"SHUTDOWN_GRACE_PERIOD_MS", ms_text(t.shutdown_grace)},
      {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", ms_text(t.claim_interval)},
      {"PENDING_MESSAGE_MIN_IDLE_MS", ms_text(t.claim_min_idle)},
      {"HTTP_ADDRESS", c.http_address ? c.http_address->describe() : "off"},
      {"STATS_INTERVAL_MS", ms_text(c.stats_interval)},
      {"LOG_LEVEL", std::string(log_level_name(c.log_level))},
      {"LOG_FORMAT", c.log_format == LogFormat::Pretty ? "pretty" : "json"},
  });
}
}  // namespace

std::string describe_config(const Config& c) {
  DisplayValues values;
  add_redis_and_stream(c, values);
  add_outputs(c, values);
  add_entra(c, values);
  add_tuning_and_monitoring(c, values);
  std::string text;
  for (const auto& setting : settings())
    text += std::string(setting.variable) + "=" + values.at(setting.variable) + "\n";
  // Not a setting: what the settings select, so an operator sees which flow will run.
  if (c.entra) text += "# Microsoft Entra ID credential: " + c.entra->describe() + "\n";
  return text;
}

}  // namespace connector
