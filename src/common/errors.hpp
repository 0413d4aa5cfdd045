#pragma once
// The connector's error hierarchy (DESIGN.md "Errors"). Messages say what failed, where, and what to
// check; they never contain a secret.
#include <stdexcept>
#include <string>
#include <vector>

namespace connector {

/// Base of every error the connector raises on purpose.
class ConnectorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Redis could not be reached, the handshake or authentication failed, or the socket broke.
class RedisConnectionError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// Redis answered, but not as a stream command should (error reply, unexpected reply shape, WRONGTYPE).
class RedisStreamError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// Event Hubs refused, was unreachable, or broke the AMQP protocol.
class EventHubsError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// The HTTP endpoint (metrics, probes) could not listen on its address.
class ListenError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// A Microsoft Entra ID token could not be obtained: the flow and endpoint are named, never a secret.
class IdentityError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// One stream entry could not be turned into an event.
class MessageProcessingError : public ConnectorError {
 public:
  using ConnectorError::ConnectorError;
};

/// The configuration is invalid; carries every problem found, one human sentence each.
class ConfigurationError : public ConnectorError {
 public:
  explicit ConfigurationError(std::vector<std::string> problems);
  const std::vector<std::string>& problems() const noexcept { return problems_; }

 private:
  std::vector<std::string> problems_;
};

}  // namespace connector
