#include "redis/sentinel.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "common/errors.hpp"
#include "config/host_port.hpp"

namespace connector {
namespace {

/// What one sentinel said about the master name.
struct SentinelAnswer {
  std::string sentinel;                  // "host:port" of the sentinel
  std::optional<PrimaryAddress> primary;  // set: it named one
  bool unknown_name = false;             // it answered nil: it monitors no master of that name
  bool refused = false;                  // it answered with an error reply
  std::string failure;                   // why it did not name a primary (for the error text)
};

std::optional<PrimaryAddress> address_of(const RedisReplyView& reply) {
  if (!reply.is_array() || reply.size() != 2 || !reply[0].is_string() || !reply[1].is_string()) return std::nullopt;
  const std::string_view port_text = reply[1].str();
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (reply[0].str().empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  return PrimaryAddress{std::string(reply[0].str()), static_cast<std::uint16_t>(port)};
}

SentinelAnswer ask(const SentinelSettings& settings, const HostPort& sentinel) {
  RedisConnectionOptions options = settings.connection;
  options.endpoint.host = sentinel.host;
  options.endpoint.port = sentinel.port.value_or(kDefaultSentinelPort);
  options.endpoint.database = 0;  // sentinels have no databases and refuse SELECT
  SentinelAnswer answer;
  answer.sentinel = join_host_port(options.endpoint.host, options.endpoint.port);
  try {
    RedisConnection connection(std::move(options));
    connection.connect();
    const RedisReply reply = connection.command({"SENTINEL", "get-master-addr-by-name", settings.master_name});
    if (reply.is_nil()) {
      answer.unknown_name = true;
      answer.failure = "knows no master of that name";
    } else if (reply.is_error()) {
      answer.refused = true;
      answer.failure = reply.describe();
    } else if (auto primary = address_of(reply)) {
      answer.primary = std::move(primary);
    } else {
      answer.refused = true;
      answer.failure = "answered " + reply.describe() + ", not [ip, port]";
    }
  } catch (const RedisConnectionError& error) {
    answer.failure = error.what();
  }
  return answer;
}

std::string list_failures(const std::vector<SentinelAnswer>& answers) {
  std::string text;
  for (const auto& answer : answers) {
    if (!text.empty()) text += "; ";
    text += answer.sentinel + ": " + (answer.primary ? "names " + answer.primary->describe() : answer.failure);
  }
  return text;
}

/// The address named by more than half of the sentinels that named one, if any.
std::optional<PrimaryAddress> majority_of(const std::vector<SentinelAnswer>& answers, std::size_t& voters) {
  voters = 0;
  for (const auto& answer : answers) voters += answer.primary ? 1 : 0;
  for (const auto& candidate : answers) {
    if (!candidate.primary) continue;
    std::size_t votes = 0;
    for (const auto& answer : answers) votes += answer.primary == candidate.primary ? 1 : 0;
    if (2 * votes > voters) return candidate.primary;
  }
  return std::nullopt;
}

}  // namespace

std::string PrimaryAddress::describe() const { return join_host_port(host, port); }

PrimaryAddress find_primary(const SentinelSettings& settings) {
  const std::string master = "the Redis master '" + settings.master_name + "'";
  if (settings.sentinels.empty()) throw ConfigurationError({"No sentinel to ask for " + master});
  std::vector<SentinelAnswer> answers;
  answers.reserve(settings.sentinels.size());
  for (const auto& sentinel : settings.sentinels) answers.push_back(ask(settings, sentinel));

  std::size_t voters = 0;
  if (auto primary = majority_of(answers, voters)) return *primary;
  if (voters > 0) {
    throw RedisConnectionError("The sentinels disagree about the primary of " + master +
                               " (a failover in progress?): " + list_failures(answers));
  }
  bool any_unknown = false;
  bool any_refused = false;
  for (const auto& answer : answers) {
    any_unknown = any_unknown || answer.unknown_name;
    any_refused = any_refused || answer.refused;
  }
  if (any_unknown) {
    throw ConfigurationError({"No sentinel monitors " + master + ": check REDIS_SENTINEL_MASTER (" +
                              list_failures(answers) + ")"});
  }
  if (any_refused) {
    throw ConfigurationError({"The sentinels asked for " + master + " refused the question (are they sentinels? "
                              "does the user have +sentinel|get-master-addr-by-name?): " + list_failures(answers)});
  }
  throw RedisConnectionError("No sentinel could be reached to find " + master + ": " + list_failures(answers));
}

void require_primary_role(RedisConnection& connection) {
  const RedisReply role = connection.command({"ROLE"});
  if (!role.is_array() || !role[0].is_string()) {
    throw RedisConnectionError("Unexpected reply to ROLE from Redis at " + connection.endpoint().describe() + ": " +
                               role.describe());
  }
  if (role[0].str() != "master") {
    throw RedisConnectionError("Redis at " + connection.endpoint().describe() + " is a " + std::string(role[0].str()) +
                               ", not the primary (demoted by a failover?): ask the sentinels again");
  }
}

bool is_readonly_error(std::string_view error_text) {
  if (error_text.starts_with('-')) error_text.remove_prefix(1);
  return error_text.starts_with("READONLY");
}

}  // namespace connector
