#pragma once
// What a pipeline thread does about an error a Redis call threw: one policy for the reader and the acker.
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include "common/errors.hpp"

namespace connector {

/// The action an error calls for. The reader and the acker thread both decide with classify_redis_error(),
/// so one error class is never fatal on one thread and retried on the other.
enum class RedisErrorAction : std::uint8_t {
  // Every RedisErrorKind but Reply: the connection is unusable (socket, timeout, TLS, a RESP protocol
  // error, AUTH). Also a Reply MOVED, ASK or READONLY: this node no longer serves the stream. Close it,
  // back off, connect again (a routed connection asks where to go again).
  Reconnect,
  // Reply with code NOGROUP or UNBLOCKED: the group or the stream vanished. Recreate the group (from
  // "0") and go on.
  RecreateGroup,
  // Any other Reply: Redis answered and refused (OOM, an error reply, a reply of the wrong
  // shape), and the connection is still in step. Back off and ask again on the same connection.
  Retry,
  // ConfigurationError (e.g. STREAM_KEY turned into a string): stop the pipeline; main exits with 2.
  StopInvalidConfiguration,
  // Anything else is a bug, never data: stop the pipeline; main exits with 1.
  StopUnexpected,
};

/// The action for a RedisError: the one place that maps its kind (and reply code) to what to do.
RedisErrorAction redis_error_action(RedisErrorKind kind, RedisReplyCode code) noexcept;
/// The action for anything a Redis call threw: redis_error_action() for a RedisError.
RedisErrorAction classify_redis_error(const std::exception& error) noexcept;

/// A failure the thread recovers from (never a Stop* action), with the error's text for the log.
struct RedisFailure {
  RedisErrorAction action = RedisErrorAction::Retry;
  std::string message;
};

/// Runs `work`. Returns nothing when it succeeded, the failure when the policy says to recover, and
/// rethrows what the policy says stops the thread (its outer catch records it as the pipeline's fatal error).
template <class Work>
std::optional<RedisFailure> try_redis(Work&& work) {
  try {
    work();
    return std::nullopt;
  } catch (const std::exception& error) {
    const RedisErrorAction action = classify_redis_error(error);
    if (action == RedisErrorAction::StopInvalidConfiguration || action == RedisErrorAction::StopUnexpected) throw;
    return RedisFailure{action, error.what()};
  }
}

}  // namespace connector
