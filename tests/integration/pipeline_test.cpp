// The pipeline in-process, against a real redis-server, with a sink whose outcomes the test decides.
#include "core/pipeline.hpp"

#include <gtest/gtest.h>

#include "support/child_process.hpp"
#include "support/controllable_sink.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ControllableSink;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::wait_until;

constexpr const char* kStream = "pipe:stream";
constexpr const char* kGroup = "pipe-group";

PipelineOptions fast_options() {
  PipelineOptions options;
  options.batch_size = 10;
  options.max_in_flight_batches = 4;
  options.poll_timeout = 100ms;
  options.retry_delay = 50ms;
  options.max_retry_delay = 500ms;
  options.shutdown_grace = 2000ms;
  options.claim_interval = 100ms;
  options.claim_min_idle = 200ms;
  options.max_delivery_attempts = 10;
  return options;
}

StreamConsumerOptions stream_options(std::string consumer = "me") {
  StreamConsumerOptions options;
  options.stream_key = kStream;
  options.group = kGroup;
  options.consumer = std::move(consumer);
  options.group_start_id = "0";
  return options;
}

Encoder encoder(std::optional<std::string> body_field = std::nullopt) {
  return Encoder({kStream, std::move(body_field), std::nullopt});
}

std::vector<std::string> add(RedisServer& redis, int count, const std::string& value = "v") {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    ids.emplace_back(redis.command({"XADD", kStream, "*", "n", std::to_string(i), "value", value}).str());
  }
  return ids;
}

long long pending(RedisServer& redis) {
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup});
  return reply.is_array() ? reply[0].integer() : -1;
}

long long dead_letters(RedisServer& redis) {
  return redis.command({"XLEN", std::string(kStream) + ":dead-letter"}).integer();
}

std::map<std::string, std::string> fields_of(RedisReplyView entry) {
  std::map<std::string, std::string> fields;
  for (std::size_t i = 0; i + 1 < entry[1].size(); i += 2) {
    fields[std::string(entry[1][i].str())] = std::string(entry[1][i + 1].str());
  }
  return fields;
}

TEST(pipeline_test, acks_only_after_the_sink_confirms) {
  RedisServer redis;
  add(redis, 10);
  ControllableSink sink;  // holds everything
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(pending(redis), 10) << "nothing may be acked before the sink confirmed it";
  EXPECT_EQ(sink.complete_held(Outcome::Accepted), 10u);
  EXPECT_TRUE(wait_until([&] { return pending(redis) == 0; }, 5s));
  pipeline.stop();
  EXPECT_EQ(pipeline.stats().acked, 10u);
}

TEST(pipeline_test, retry_outcomes_are_sent_again_until_accepted) {
  RedisServer redis;
  const auto ids = add(redis, 5);
  std::mutex mutex;
  std::map<std::string, int> attempts;
  ControllableSink sink([&](const Event& event) -> std::optional<Outcome> {
    std::lock_guard lock(mutex);
    return ++attempts[event.entry_id] < 3 ? Outcome::Retry : Outcome::Accepted;
  });
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && pipeline.stats().acked == 5; }, 10s));
  pipeline.stop();
  std::lock_guard lock(mutex);
  for (const auto& id : ids) EXPECT_EQ(attempts[id], 3) << id;
  EXPECT_EQ(pipeline.stats().retried, 10u);
}

TEST(pipeline_test, rejected_events_move_to_the_dead_letter_stream_with_their_fields) {
  RedisServer redis;
  const auto ids = add(redis, 4);
  ControllableSink sink([&](const Event& event) -> std::optional<Outcome> {
    return event.entry_id == ids[2] ? Outcome::Reject : Outcome::Accepted;
  });
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && dead_letters(redis) == 1; }, 10s));
  pipeline.stop();
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  auto fields = fields_of(dead[0]);
  EXPECT_EQ(fields["n"], "2");
  EXPECT_EQ(fields["dlq-original-id"], ids[2]);
  EXPECT_EQ(fields["dlq-reason"], "policy");
  EXPECT_EQ(pipeline.stats().acked, 3u);
  EXPECT_EQ(pipeline.stats().dead_lettered, 1u);
}

TEST(pipeline_test, in_flight_batches_are_bounded_and_reading_resumes) {
  RedisServer redis;
  add(redis, 100);
  ControllableSink sink;
  auto options = fast_options();
  options.batch_size = 10;
  options.max_in_flight_batches = 2;
  Pipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(20, 10s));
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(sink.sent_ids().size(), 20u) << "read beyond MAX_IN_FLIGHT_BATCHES x BATCH_SIZE";
  EXPECT_EQ(pipeline.stats().read, 20u);
  sink.set_policy([](const Event&) { return std::optional(Outcome::Accepted); });
  sink.complete_held(Outcome::Accepted);
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 100; }, 10s));
  pipeline.stop();
}

TEST(pipeline_test, confirmations_are_kept_while_redis_restarts_and_acked_after) {
  RedisServerOptions server_options;
  server_options.aof_always = true;
  RedisServer redis(server_options);
  add(redis, 10);
  ControllableSink sink;
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  redis.stop();
  sink.complete_held(Outcome::Accepted);
  std::this_thread::sleep_for(300ms);
  redis.start();
  EXPECT_TRUE(wait_until([&] { return pending(redis) == 0 && pipeline.stats().acked == 10; }, 20s));
  pipeline.stop();
}

TEST(pipeline_test, pending_entries_trimmed_from_the_stream_are_acked_not_retried) {
  RedisServer redis;
  const auto ids = add(redis, 6);
  redis.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
  redis.command({"XREADGROUP", "GROUP", kGroup, "me", "COUNT", "6", "STREAMS", kStream, ">"});
  redis.command({"XDEL", kStream, ids[1], ids[4]});
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0; }, 10s));
  pipeline.stop();
  EXPECT_EQ(sink.sent_ids().size(), 4u);
  EXPECT_EQ(pipeline.stats().deleted_acked, 2u);
}

class claim_test : public ::testing::TestWithParam<ClaimMode> {};

TEST_P(claim_test, idle_entries_of_a_dead_consumer_are_claimed_and_delivered) {
  RedisServer redis;
  const auto ids = add(redis, 25);
  redis.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
  redis.command({"XREADGROUP", "GROUP", kGroup, "dead", "COUNT", "25", "STREAMS", kStream, ">"});
  redis.command({"XDEL", kStream, ids[7]});  // trimmed while pending with the dead consumer
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  auto stream = stream_options();
  stream.claim_mode = GetParam();
  Pipeline pipeline(fast_options(), redis.connection_options(), stream, encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0; }, 15s));
  pipeline.stop();
  EXPECT_EQ(pipeline.stats().claimed, 24u);
  EXPECT_EQ(sink.sent_ids().size(), 24u);
}

INSTANTIATE_TEST_SUITE_P(modes, claim_test, ::testing::Values(ClaimMode::AutoClaim, ClaimMode::PendingAndClaim),
                         [](const auto& info) {
                           return info.param == ClaimMode::AutoClaim ? std::string("xautoclaim")
                                                                     : std::string("xpending_xclaim");
                         });

TEST(pipeline_test, an_entry_delivered_too_often_is_dead_lettered_unsent) {
  RedisServer redis;
  const auto ids = add(redis, 3);
  redis.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
  redis.command({"XREADGROUP", "GROUP", kGroup, "me", "COUNT", "3", "STREAMS", kStream, ">"});
  redis.command({"XCLAIM", kStream, kGroup, "me", "0", ids[1], "RETRYCOUNT", "20"});
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && dead_letters(redis) == 1; }, 10s));
  pipeline.stop();
  EXPECT_EQ(sink.sent_ids(), (std::vector<std::string>{ids[0], ids[2]}));
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  auto fields = fields_of(dead[0]);
  EXPECT_EQ(fields["dlq-original-id"], ids[1]);
  EXPECT_NE(fields["dlq-reason"].find("MAX_DELIVERY_ATTEMPTS"), std::string::npos);
}

TEST(pipeline_test, an_event_larger_than_the_output_takes_is_dead_lettered) {
  RedisServer redis;
  add(redis, 1, "small");
  const auto big = add(redis, 1, std::string(5000, 'x'));
  add(redis, 1, "small");
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  sink.set_max_event_bytes(1000);
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && dead_letters(redis) == 1; }, 10s));
  pipeline.stop();
  EXPECT_EQ(sink.sent_ids().size(), 2u);
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  EXPECT_NE(fields_of(dead[0])["dlq-reason"].find("exceeds"), std::string::npos);
}

TEST(pipeline_test, a_deleted_group_is_recreated_and_reading_goes_on) {
  RedisServer redis;
  add(redis, 5);
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  Pipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 5; }, 10s));
  redis.command({"XGROUP", "DESTROY", kStream, kGroup});
  add(redis, 5);
  // The group comes back (from GROUP_START_ID 0, so the first five are delivered again: at least once).
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked >= 15 && pending(redis) == 0; }, 15s));
  pipeline.stop();
}

TEST(pipeline_test, stop_leaves_unconfirmed_entries_pending_for_redelivery) {
  RedisServer redis;
  add(redis, 10);
  ControllableSink sink;
  auto options = fast_options();
  options.shutdown_grace = 300ms;
  Pipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  const auto started = std::chrono::steady_clock::now();
  pipeline.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
  EXPECT_EQ(pending(redis), 10);
  EXPECT_EQ(pipeline.stats().acked, 0u);
}

}  // namespace
}  // namespace connector
