#include "eventhubs/amqp_errors.hpp"

#include <algorithm>
#include <array>

namespace connector {

namespace {
constexpr std::array<std::string_view, 3> kPermanent = {"amqp:link:message-size-exceeded",
                                                        "amqp:decode-error", "com.microsoft:argument-error"};
constexpr std::array<std::string_view, 4> kConfiguration = {"amqp:unauthorized-access", "amqp:not-found",
                                                            "com.microsoft:entity-disabled",
                                                            "amqp:resource-limit-exceeded"};
constexpr std::string_view kServerBusy = "com.microsoft:server-busy";

struct ConditionCause {
  std::string_view condition;
  Cause cause;
};
constexpr std::array<ConditionCause, 7> kCauses = {{
    {kServerBusy, Cause::ServerBusy},
    {"com.microsoft:timeout", Cause::Timeout},
    {"amqp:link:message-size-exceeded", Cause::TooLarge},
    {"amqp:link:detach-forced", Cause::Connection},
    {"amqp:connection:forced", Cause::Connection},
    {"amqp:connection:framing-error", Cause::Connection},
    {"amqp:connection:redirect", Cause::Connection},
}};

bool contains(auto const& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}
}  // namespace

AmqpErrorKind classify_amqp_condition(std::string_view condition) {
  if (condition == kServerBusy) return AmqpErrorKind::ServerBusy;
  if (contains(kPermanent, condition)) return AmqpErrorKind::Permanent;
  if (contains(kConfiguration, condition)) return AmqpErrorKind::Configuration;
  return AmqpErrorKind::Transient;
}

AmqpErrorKind classify_connection_failure(std::string_view condition, std::string_view description) {
  // Proton's text (transport.c); the service never sends it, it has no view of our idle timer.
  if (condition == "amqp:resource-limit-exceeded" &&
      description.find("local-idle-timeout") != std::string_view::npos) {
    return AmqpErrorKind::Transient;
  }
  return classify_amqp_condition(condition);
}

Cause cause_of_condition(std::string_view condition, Cause otherwise) {
  const auto* found = std::find_if(kCauses.begin(), kCauses.end(), [condition](const ConditionCause& entry) {
    return entry.condition == condition;
  });
  return found == kCauses.end() ? otherwise : found->cause;
}

Cause cause_of_lost_connection(std::string_view condition) {
  const Cause cause = cause_of_condition(condition, Cause::Connection);
  return cause == Cause::ServerBusy || cause == Cause::Timeout ? cause : Cause::Connection;
}

Outcome outcome_for(AmqpErrorKind kind) {
  return kind == AmqpErrorKind::Permanent ? Outcome::Reject : Outcome::Retry;
}

std::chrono::milliseconds server_busy_delay(double unit_random) {
  const double clamped = std::clamp(unit_random, 0.0, 1.0);
  return std::chrono::milliseconds(4000 + static_cast<long long>(clamped * 4000.0));
}

std::string describe_condition(std::string_view condition, std::string_view description) {
  if (condition.empty() && description.empty()) return "unknown error";
  if (condition.empty()) return std::string(description);
  if (description.empty()) return std::string(condition);
  std::string out(condition);
  out += ": ";
  out += description;
  return out;
}

}  // namespace connector
