#pragma once
// How the connector treats the AMQP error conditions Event Hubs returns (DESIGN.md "Errors the service
// returns").
#include <chrono>
#include <string>
#include <string_view>

#include "common/cause.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// What an error condition means for the event or the connection that received it.
enum class AmqpErrorKind {
  Transient,      // try again (timeouts, internal errors, forced detach, unknown conditions)
  ServerBusy,     // throttled: try again, but not before a few seconds
  Permanent,      // this event can never be accepted (too large, undecodable, bad argument)
  Configuration,  // credentials, hub or quota are wrong: fatal at startup, logged and retried at runtime
};

/// Classifies an AMQP condition name such as "com.microsoft:server-busy". Unknown names are Transient,
/// because giving up on an event that might still go through would lose it to the dead-letter stream.
AmqpErrorKind classify_amqp_condition(std::string_view condition);

/// Like classify_amqp_condition, for a connection or transport that ended. Proton reports its own idle
/// timeout as "amqp:resource-limit-exceeded" / "local-idle-timeout expired": that is a dead connection
/// (Transient, normal reconnect back-off), not the service's quota.
AmqpErrorKind classify_connection_failure(std::string_view condition, std::string_view description);

/// The Cause an AMQP condition names: the one map from a condition to a Cause. `otherwise` for a
/// condition that names none (Rejected for a refused event, Connection for a connection that ended).
Cause cause_of_condition(std::string_view condition, Cause otherwise);

/// The Cause of the resends after a connection ended with `condition`: ServerBusy or Timeout when it
/// names one, else Connection (the events on the wire did not fail themselves).
Cause cause_of_lost_connection(std::string_view condition);

/// The outcome a rejected delivery turns into: Permanent → Reject, everything else → Retry.
Outcome outcome_for(AmqpErrorKind kind);

/// The minimum wait a server-busy Retry asks for: 4 s plus up to 4 s more, `unit_random` ∈ [0, 1)
/// picking where (the .NET SDK adds 4 s after server-busy; the spread keeps many clients apart).
std::chrono::milliseconds server_busy_delay(double unit_random);

/// "name: description", or just the one that is set; never empty.
std::string describe_condition(std::string_view condition, std::string_view description);

}  // namespace connector
