#include "core/redis_error_policy.hpp"

#include "common/errors.hpp"

namespace connector {

RedisErrorAction redis_error_action(RedisErrorKind kind, RedisReplyCode code) noexcept {
  switch (kind) {
    case RedisErrorKind::Io:
    case RedisErrorKind::Timeout:
    case RedisErrorKind::Closed:
    case RedisErrorKind::Protocol:
    case RedisErrorKind::Handshake:
      return RedisErrorAction::Reconnect;
    case RedisErrorKind::Reply:
      break;
  }
  // A blocking XREADGROUP answers UNBLOCKED when the stream is deleted under it: the group went with it.
  if (code == RedisReplyCode::NoGroup || code == RedisReplyCode::Unblocked)
    return RedisErrorAction::RecreateGroup;
  // The stream lives on another node now (MOVED; ASK while its slot migrates) or this node was demoted
  // (READONLY): the reconnect routes again (REDIS_CLUSTER, REDIS_SENTINELS). The refused command did
  // nothing, so nothing is lost.
  if (code == RedisReplyCode::Moved || code == RedisReplyCode::Ask || code == RedisReplyCode::ReadOnly)
    return RedisErrorAction::Reconnect;
  return RedisErrorAction::Retry;
}

RedisErrorAction classify_redis_error(const std::exception& error) noexcept {
  if (const auto* redis = dynamic_cast<const RedisError*>(&error))
    return redis_error_action(redis->kind(), redis->code());
  if (dynamic_cast<const ConfigurationError*>(&error) != nullptr) return RedisErrorAction::StopInvalidConfiguration;
  return RedisErrorAction::StopUnexpected;
}

}  // namespace connector
