#include "config/config_loader.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
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
#include "config/proxy_url.hpp"
#include "config/settings.hpp"
#include "config/text.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"
#include "redis/cluster_slots.hpp"

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

/// A Choice row's words, separated by `separator`.
std::string words(const Setting& s, std::string_view separator) {
  std::string list;
  for (const auto& choice : s.choices)
    list += (list.empty() ? "" : std::string(separator)) + std::string(choice.word);
  return list;
}

/// The placeholder --help shows after the flag; a Choice row shows its words (bash completion reads them).
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
    case SettingKind::Choice:
      return words(s, "|");
    case SettingKind::Text:
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

/// A Choice row's words as a sentence: "a, b or c".
std::string one_of(const Setting& s) {
  std::string list;
  for (std::size_t i = 0; i < s.choices.size(); ++i) {
    if (i > 0) list += i + 1 == s.choices.size() ? " or " : ", ";
    list += s.choices[i].word;
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

/// The default of a row, converted; a default the row's own validation refuses is a bug in the table.
[[noreturn]] void bad_default(const Setting& row) {
  throw std::logic_error("the settings table's default of " + std::string(row.variable) + " is invalid");
}

/// `value` converted by the row's kind; nullopt when the kind refuses it.
std::optional<SettingValue> convert(const Setting& row, std::string_view value) {
  switch (row.kind) {
    case SettingKind::Number:
    case SettingKind::Millis:
      if (const auto number = parse_whole_number(value, row.min, row.max)) return SettingValue(*number);
      return std::nullopt;
    case SettingKind::Bool:
      if (const auto flag = parse_boolean(value)) return SettingValue(std::in_place_type<bool>, *flag);
      return std::nullopt;
    case SettingKind::Choice: {
      const auto word = text::to_lower(text::trim(value));
      for (const auto& choice : row.choices) {
        if (text::to_lower(choice.word) == word) return SettingValue(static_cast<long long>(choice.value));
      }
      return std::nullopt;
    }
    case SettingKind::Text:
    case SettingKind::Path:
      break;
  }
  return SettingValue(std::string(value));
}

/// What a problem says after a value the row's kind refused: what it accepts.
std::string refusal(const Setting& row) {
  switch (row.kind) {
    case SettingKind::Number:
    case SettingKind::Millis: {
      const std::string unit = row.kind != SettingKind::Millis ? ""
                               : row.min == 0                  ? "of milliseconds (0 = off) "
                                                               : "of milliseconds ";
      return " is not a whole number " + unit + "from " + std::to_string(row.min) + " to " +
             std::to_string(row.max);
    }
    case SettingKind::Bool:
      return " is not a boolean (true, false, 1, 0, yes or no)";
    case SettingKind::Choice:
      return " is not " + one_of(row);
    case SettingKind::Text:
    case SettingKind::Path:
      break;
  }
  return " is not accepted";
}

/// The alias of a row of the table (empty: none, or no such row).
std::string_view alias_of(std::string_view variable) {
  for (const Setting& row : settings()) {
    if (row.variable == variable) return row.alias;
  }
  return {};
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
  /// Within the environment and the .env file, the row's own name wins over its alias.
  std::optional<std::string> get(std::string_view variable) const {
    const std::string name(variable);
    if (const auto it = flags_.find(name); it != flags_.end()) {
      return it->second.empty() ? std::nullopt : std::optional(it->second);
    }
    const std::string alias(alias_of(variable));
    for (const auto* layer : {&environment_, &dotenv_}) {
      for (const std::string* key : {&name, &alias}) {
        if (key->empty()) continue;
        if (const auto it = layer->find(*key); it != layer->end() && !it->second.empty()) return it->second;
      }
    }
    return std::nullopt;
  }

  void required(std::string_view variable) {
    problem(variable,
            "required, but not set (set " + std::string(variable) + " or " + flag_name(variable) + ")");
  }

  /// The row's value converted, else its default converted; a refused value is a problem and the default
  /// stands in for it. Nullopt for a required setting that is not set.
  std::optional<SettingValue> resolve(const Setting& row) {
    const auto fallback = convert(row, row.default_value);
    if (!fallback) bad_default(row);
    const auto value = get(row.variable);
    if (!value) {
      if (!row.required()) return fallback;
      required(row.variable);
      return std::nullopt;
    }
    if (auto converted = convert(row, *value)) return converted;
    problem(row.variable, in_quotes(*value) + refusal(row));
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

/// The rediss:// settings need a rediss:// URL; a client certificate needs its key; the files are readable.
void check_redis_tls(Resolver& r, const Config& config) {
  const auto& tls = config.redis_tls;
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

/// GROUP_START_ID is an ID; each stream's dead-letter stream is DEAD_LETTER_STREAM or "<key>:dead-letter",
/// and never one of the streams read (dead letters would be read again).
void check_stream(Resolver& r, Config& config) {
  if (config.group_start_id != "$" && !is_stream_id(config.group_start_id)) {
    r.problem("GROUP_START_ID",
              in_quotes(config.group_start_id) +
                  " is not $ (new entries), 0 (everything) or a stream ID like 1700000000000-0");
  }
  for (StreamSpec& stream : config.streams) {
    stream.dead_letter_stream =
        config.dead_letter_stream.empty() ? stream.key + ":dead-letter" : config.dead_letter_stream;
    for (const StreamSpec& read : config.streams) {
      if (stream.dead_letter_stream != read.key) continue;
      r.problem("DEAD_LETTER_STREAM", in_quotes(stream.dead_letter_stream) +
                                          " is a stream of STREAM_KEY; dead letters would be read again");
    }
  }
}

/// REDIS_CLUSTER and REDIS_SENTINELS: one of them, over TCP or TLS, with what each needs. On a cluster
/// each dead-letter stream must share its stream's slot: its XADD goes to the stream's node, and a key
/// of another slot would be refused there forever (MOVED), leaving the entry pending, never moved.
void check_redis_topology(Resolver& r, const Config& config) {
  const bool sentinel = !config.redis_sentinels.empty();
  if (!config.redis_cluster && !config.redis_cluster_nodes.empty())
    r.problem("REDIS_CLUSTER_NODES", "set, but REDIS_CLUSTER is not true; set REDIS_CLUSTER=true for a cluster");
  if (!config.redis_cluster && !sentinel) {
    if (!config.redis_sentinel_master.empty() && !r.get("REDIS_SENTINELS"))
      r.problem("REDIS_SENTINEL_MASTER", "set, but REDIS_SENTINELS is not; name the sentinels too");
    return;
  }
  if (config.redis_cluster && sentinel) {
    r.problem("REDIS_SENTINELS", "set with REDIS_CLUSTER=true; a Redis Cluster has no sentinels, use one of them");
  }
  if (config.redis.scheme == RedisEndpoint::Scheme::Unix) {
    r.problem(config.redis_cluster ? "REDIS_CLUSTER" : "REDIS_SENTINELS",
              "needs a redis:// or rediss:// REDIS_URL, not unix://");
  }
  if (sentinel && config.redis_sentinel_master.empty()) {
    r.problem("REDIS_SENTINEL_MASTER", "required with REDIS_SENTINELS: the master name the sentinels monitor");
  }
  if (!config.redis_cluster) return;
  if (config.redis.database != 0) {
    r.problem("REDIS_URL", "names database " + std::to_string(config.redis.database) +
                               ", but a Redis Cluster has only database 0");
  }
  for (const StreamSpec& stream : config.streams) {
    if (key_slot(stream.dead_letter_stream) == key_slot(stream.key)) continue;
    r.problem("DEAD_LETTER_STREAM",
              in_quotes(stream.dead_letter_stream) + " hashes to slot " +
                  std::to_string(key_slot(stream.dead_letter_stream)) + ", its stream " + in_quotes(stream.key) +
                  " to slot " + std::to_string(key_slot(stream.key)) +
                  "; on a Redis Cluster both must share a slot: give the stream a hash tag, e.g. "
                  "{telemetry}:events (its default dead-letter stream {telemetry}:events:dead-letter follows)");
  }
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
    endpoint.port_explicit = true;
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

/// EVENT_HUB_CONNECTION_STRING (required for EVENT_HUBS without the namespace), checked against
/// EVENT_HUB_NAME and EVENT_HUBS_TLS_CA_FILE.
void resolve_connection_string(Resolver& r, Config& config) {
  if (const auto connection_string = r.get("EVENT_HUB_CONNECTION_STRING")) {
    try {
      config.eventhubs = parse_eventhubs_connection_string(*connection_string);
    } catch (const std::invalid_argument& e) {
      r.problem("EVENT_HUB_CONNECTION_STRING", e.what());
    }
  } else {
    r.required("EVENT_HUB_CONNECTION_STRING");
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

/// The partition settings exclude each other; EVENT_HUBS takes its endpoint from the connection string
/// or, with Microsoft Entra ID, from the namespace.
void finalize_eventhubs(Resolver& r, Config& config) {
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
  resolve_connection_string(r, config);
}
/// HTTPS_PROXY, read for the WebSocket transport only: AMQP on 5671 cannot go through an HTTP proxy, and
/// a machine-wide HTTPS_PROXY meant for other programs must not stop it. The value is quoted with its
/// password as ***.
void resolve_https_proxy(Resolver& r, Config& config) {
  if (config.output != OutputType::EventHubs ||
      config.eventhubs_transport != EventHubsTransport::WebSockets) {
    return;
  }
  const auto value = r.get("HTTPS_PROXY");
  if (!value) return;
  try {
    config.https_proxy = parse_proxy_url(*value);
  } catch (const std::invalid_argument& e) {
    r.problem("HTTPS_PROXY", in_quotes(redact_proxy_url(*value)) + ": " + e.what());
  }
}

/// REDIS_AUTH=entra takes the password from Microsoft Entra ID, so none may be given.
void check_redis_auth(Resolver& r, const Config& config) {
  if (config.redis_entra && !config.redis.password.empty()) {
    r.problem("REDIS_AUTH",
              "entra takes the password from Microsoft Entra ID; unset REDIS_PASSWORD and the "
              "password in REDIS_URL");
  }
}

/// The pieces each credential needs come together (DefaultAzureCredential's rules).
void check_entra_credentials(Resolver& r, const EntraSettings& e) {
  // Which credential is used is EntraSettings::kind()'s decision alone; this only checks its pieces.
  const EntraCredentialKind kind = e.kind();
  const bool client_flow =
      kind == EntraCredentialKind::ClientSecret || kind == EntraCredentialKind::WorkloadIdentity;
  const std::string client_flow_variable =
      kind == EntraCredentialKind::WorkloadIdentity ? "AZURE_FEDERATED_TOKEN_FILE" : "AZURE_CLIENT_SECRET";
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
  if (kind == EntraCredentialKind::WorkloadIdentity) {
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

/// Every row of one side of the table through the layers into Config: the Microsoft Entra ID rows, or
/// all others. A row without a `store` is read by the finalize step.
void resolve_rows(Resolver& r, Config& config, bool entra_rows) {
  for (const Setting& row : settings()) {
    if (row.entra() != entra_rows || row.binding.store == nullptr) continue;
    const auto value = r.resolve(row);
    if (!value) continue;
    try {
      row.binding.store(config, *value);
    } catch (const std::invalid_argument& e) {
      r.problem(row.variable, e.what());
    }
  }
}

/// azure-identity's variables, read and checked only when something uses Entra ID (a shared .env may
/// hold them).
void finalize_entra(Resolver& r, Config& config) {
  check_redis_auth(r, config);
  if (!config.eventhubs_entra && !config.redis_entra) return;

  resolve_rows(r, config, true);
  const EntraSettings& e = config.entra.value();
  check_entra_credentials(r, e);
  check_entra_endpoints(r, e);
  if (config.redis_entra && e.refresh_margin <= config.tuning.poll_timeout) {
    // A reader blocked in XREADGROUP re-authenticates only when its read returns.
    r.problem("ENTRA_TOKEN_REFRESH_MARGIN_MS", "must exceed POLL_TIMEOUT_MS (" +
                                                   std::to_string(config.tuning.poll_timeout.count()) +
                                                   ") so that a blocked reader re-authenticates in time");
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

/// Every row through the layers into Config, then the finalize step: what needs several settings.
void resolve_all(Resolver& resolver, Config& config) {
  resolve_rows(resolver, config, false);
  check_redis_tls(resolver, config);
  check_stream(resolver, config);
  check_redis_topology(resolver, config);
  finalize_eventhubs(resolver, config);
  resolve_https_proxy(resolver, config);
  finalize_entra(resolver, config);
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

std::string describe_config(const Config& c) {
  std::string text;
  for (const auto& row : settings())
    text += std::string(row.variable) + "=" + row.binding.show(row, c) + "\n";
  // Not a setting: what the settings select, so an operator sees which flow will run.
  if (c.entra) text += "# Microsoft Entra ID credential: " + c.entra->describe() + "\n";
  return text;
}

}  // namespace connector
