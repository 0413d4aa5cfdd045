// The one error policy of the pipeline's reader and acker threads (core/redis_error_policy.hpp).
#include <gtest/gtest.h>

#include <stdexcept>

#include "app/connector_app.hpp"
#include "common/errors.hpp"
#include "core/redis_error_policy.hpp"

namespace connector {
namespace {

TEST(pipeline_error_policy_test, each_error_class_has_one_action) {
  EXPECT_EQ(classify_redis_error(RedisConnectionError("socket closed")), RedisErrorAction::Reconnect);
  EXPECT_EQ(classify_redis_error(RedisConnectionError("Protocol error in a reply from Redis")),
            RedisErrorAction::Reconnect);
  EXPECT_EQ(classify_redis_error(RedisStreamError("NOGROUP", RedisReplyCode::NoGroup)),
            RedisErrorAction::RecreateGroup);
  EXPECT_EQ(classify_redis_error(RedisStreamError("OOM command not allowed")), RedisErrorAction::Retry);
  EXPECT_EQ(classify_redis_error(RedisStreamError("XACK: unexpected reply")), RedisErrorAction::Retry);
  EXPECT_EQ(classify_redis_error(ConfigurationError({"STREAM_KEY: the key holds a string"})),
            RedisErrorAction::StopInvalidConfiguration);
  EXPECT_EQ(classify_redis_error(std::logic_error("a bug")), RedisErrorAction::StopUnexpected);
  EXPECT_EQ(classify_redis_error(EventHubsError("not from Redis")), RedisErrorAction::StopUnexpected);
}

TEST(pipeline_error_policy_test, every_kind_of_redis_error_has_one_action_and_one_exit_status) {
  struct Expected {
    RedisErrorKind kind;
    RedisErrorAction action;
    int exit_status;
  };
  const Expected table[] = {
      {RedisErrorKind::Io, RedisErrorAction::Reconnect, kExitCannotConnect},
      {RedisErrorKind::Timeout, RedisErrorAction::Reconnect, kExitCannotConnect},
      {RedisErrorKind::Closed, RedisErrorAction::Reconnect, kExitCannotConnect},
      {RedisErrorKind::Protocol, RedisErrorAction::Reconnect, kExitCannotConnect},
      {RedisErrorKind::Handshake, RedisErrorAction::Reconnect, kExitCannotConnect},
      {RedisErrorKind::Reply, RedisErrorAction::Retry, kExitFatal},
  };
  for (const auto& expected : table) {
    const auto kind = static_cast<int>(expected.kind);
    EXPECT_EQ(redis_error_action(expected.kind, RedisReplyCode::Other), expected.action) << kind;
    EXPECT_EQ(exit_status_of(expected.kind), expected.exit_status) << kind;
    const RedisError error(expected.kind, RedisReplyCode::Other, "text");
    EXPECT_EQ(classify_redis_error(error), expected.action) << kind;
    EXPECT_EQ(exit_status_of(error), expected.exit_status) << kind;
  }
}

TEST(pipeline_error_policy_test, a_reply_code_decides_between_recreating_the_group_and_retrying) {
  for (const RedisReplyCode code : {RedisReplyCode::NoGroup, RedisReplyCode::Unblocked}) {
    EXPECT_EQ(redis_error_action(RedisErrorKind::Reply, code), RedisErrorAction::RecreateGroup);
    // A connection already lost is reconnected first, whatever code it carried.
    EXPECT_EQ(redis_error_action(RedisErrorKind::Closed, code), RedisErrorAction::Reconnect);
  }
  for (const RedisReplyCode code : {RedisReplyCode::Other, RedisReplyCode::WrongType, RedisReplyCode::BusyGroup,
                                    RedisReplyCode::Oom, RedisReplyCode::NoPerm, RedisReplyCode::NoAuth}) {
    EXPECT_EQ(redis_error_action(RedisErrorKind::Reply, code), RedisErrorAction::Retry)
        << static_cast<int>(code);
  }
}

TEST(pipeline_error_policy_test, a_node_that_no_longer_serves_the_stream_is_left_for_the_current_primary) {
  // MOVED and ASK (a Redis Cluster slot moved or is migrating), READONLY (a demoted primary): the
  // reconnect routes again.
  for (const RedisReplyCode code : {RedisReplyCode::Moved, RedisReplyCode::Ask, RedisReplyCode::ReadOnly}) {
    EXPECT_EQ(redis_error_action(RedisErrorKind::Reply, code), RedisErrorAction::Reconnect)
        << static_cast<int>(code);
  }
}

TEST(pipeline_error_policy_test, exit_status_of_the_other_errors) {
  EXPECT_EQ(exit_status_of(ConfigurationError({"STREAM_KEY"})), kExitInvalidConfiguration);
  EXPECT_EQ(exit_status_of(EventHubsError("unreachable")), kExitCannotConnect);
  EXPECT_EQ(exit_status_of(IdentityError("no token")), kExitCannotConnect);
  EXPECT_EQ(exit_status_of(ListenError("port taken")), kExitCannotConnect);
  EXPECT_EQ(exit_status_of(MessageProcessingError("a bug")), kExitFatal);
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
