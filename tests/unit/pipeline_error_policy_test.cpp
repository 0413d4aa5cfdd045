// The one error policy of the pipeline's reader and acker threads (core/redis_error_policy.hpp).
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/errors.hpp"
#include "core/redis_error_policy.hpp"
#include "redis/stream_consumer.hpp"

namespace connector {
namespace {

TEST(pipeline_error_policy_test, each_error_class_has_one_action) {
  EXPECT_EQ(classify_redis_error(RedisConnectionError("socket closed")), RedisErrorAction::Reconnect);
  EXPECT_EQ(classify_redis_error(RedisConnectionError("Protocol error in a reply from Redis")),
            RedisErrorAction::Reconnect);
  EXPECT_EQ(classify_redis_error(NoGroupError("NOGROUP")), RedisErrorAction::RecreateGroup);
  EXPECT_EQ(classify_redis_error(RedisStreamError("OOM command not allowed")), RedisErrorAction::Retry);
  EXPECT_EQ(classify_redis_error(RedisStreamError("XACK: unexpected reply")), RedisErrorAction::Retry);
  EXPECT_EQ(classify_redis_error(ConfigurationError({"STREAM_KEY: the key holds a string"})),
            RedisErrorAction::StopInvalidConfiguration);
  EXPECT_EQ(classify_redis_error(std::logic_error("a bug")), RedisErrorAction::StopUnexpected);
  EXPECT_EQ(classify_redis_error(EventHubsError("not from Redis")), RedisErrorAction::StopUnexpected);
}

TEST(pipeline_error_policy_test, try_redis_returns_what_to_recover_from_and_rethrows_what_stops) {
  EXPECT_FALSE(try_redis([] {}));
  const auto refused = try_redis([] { throw RedisStreamError("READONLY"); });
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->action, RedisErrorAction::Retry);
  EXPECT_EQ(refused->message, "READONLY");
  const auto lost = try_redis([] { throw RedisConnectionError("reset by peer"); });
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->action, RedisErrorAction::Reconnect);
  EXPECT_THROW(try_redis([] { throw ConfigurationError({"STREAM_KEY"}); }), ConfigurationError);
  EXPECT_THROW(try_redis([] { throw std::bad_alloc(); }), std::bad_alloc);
}

}  // namespace
}  // namespace connector
