#include "core/redis_error_policy.hpp"

#include "common/errors.hpp"
#include "redis/stream_consumer.hpp"

namespace connector {

RedisErrorAction classify_redis_error(const std::exception& error) noexcept {
  // Most specific class first: NoGroupError is a RedisStreamError.
  if (dynamic_cast<const RedisConnectionError*>(&error) != nullptr) return RedisErrorAction::Reconnect;
  if (dynamic_cast<const NoGroupError*>(&error) != nullptr) return RedisErrorAction::RecreateGroup;
  if (dynamic_cast<const RedisStreamError*>(&error) != nullptr) return RedisErrorAction::Retry;
  if (dynamic_cast<const ConfigurationError*>(&error) != nullptr) return RedisErrorAction::StopInvalidConfiguration;
  return RedisErrorAction::StopUnexpected;
}

}  // namespace connector
