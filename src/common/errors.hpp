#pragma once
// The connector's error hierarchy (DESIGN.md "Errors"). Messages say what failed, where, and what to
// check; they never contain a secret.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace connector {

/// Base of every error the connector raises on purpose.
class ConnectorError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What went wrong with a Redis call. The error policy (reconnect, retry) and the exit status decide by
/// this value, never by the error's text or class.
enum class RedisErrorKind : std::uint8_t {
  Io,         // the socket could not be opened, written or read (refused, DNS, TLS, out of memory)
  Timeout,    // no answer before the deadline; the connection was closed
  Closed,     // the server closed or reset the connection, or it was interrupted or never opened
  Protocol,   // the bytes Redis sent are not valid RESP; the connection was closed
  Handshake,  // Redis refused AUTH, SELECT, CLIENT SETNAME or PING (or a re-AUTH); the connection was closed
  Reply,      // Redis answered with an error or an unexpected reply; the connection is still in step
};

/// The error codes Redis puts first in an error reply ("NOGROUP No such key..."), as far as the
/// connector acts on them; redis_reply_code() (redis/redis_reply.hpp) reads them from a reply.
enum class RedisReplyCode : std::uint8_t {
  Other,  // any other code, or not an error reply
  NoGroup,
  Unblocked,
  WrongType,
  BusyGroup,
  Oom,
  NoPerm,
  NoAuth,
  ReadOnly,
  Moved,
  Ask,
};

/// Any failure of a Redis call, with its kind (and for an error reply, its code) as values.
class RedisError : public ConnectorError {
 public:
  RedisError(RedisErrorKind kind, RedisReplyCode code, const std::string& message)
      : ConnectorError(message), kind_(kind), code_(code) {}
  RedisErrorKind kind() const noexcept { return kind_; }
  RedisReplyCode code() const noexcept { return code_; }

 private:
  RedisErrorKind kind_;
  RedisReplyCode code_;
};

/// A RedisError after which the connection is unusable and was closed (every kind but Reply).
class RedisConnectionError : public RedisError {
 public:
  explicit RedisConnectionError(const std::string& message, RedisErrorKind kind = RedisErrorKind::Io)
      : RedisError(kind, RedisReplyCode::Other, message) {}
};

/// A RedisError of kind Reply: Redis answered, but not as a stream command should (an error reply,
/// whose code is kept, or a reply of an unexpected shape).
class RedisStreamError : public RedisError {
 public:
  explicit RedisStreamError(const std::string& message, RedisReplyCode code = RedisReplyCode::Other)
      : RedisError(RedisErrorKind::Reply, code, message) {}
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
