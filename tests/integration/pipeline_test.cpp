// The pipeline in-process, against a real redis-server, with a sink whose outcomes the test decides.
#include "core/pipeline.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "support/child_process.hpp"
#include "support/controllable_sink.hpp"
#include "support/pipeline_options.hpp"
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

// A real redis-server on loopback: the support library's default waits are made for it.
PipelineOptions fast_options() { return testing::fast_pipeline_options(); }

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

std::map<std::string, long long> integer_fields(RedisReplyView map) {
  std::map<std::string, long long> fields;
  for (std::size_t i = 0; i + 1 < map.size(); i += 2) {
    if (map[i + 1].is_integer()) fields[std::string(map[i].str())] = map[i + 1].integer();
  }
  return fields;
}

// The Pipeline with its two StreamConsumers on a real redis-server, and counters of its own.
class RedisPipeline : private PipelineStreams, private Metrics, public Pipeline {
 public:
  RedisPipeline(PipelineOptions options, const RedisConnectionOptions& redis, const StreamConsumerOptions& stream,
                Encoder encoder, Sink& sink)
      : PipelineStreams(redis, stream),
        Pipeline(options, PipelineStreams::reader, PipelineStreams::acker, std::move(encoder), sink,
                 static_cast<Metrics&>(*this)) {}
  const Metrics& counters() const { return *this; }
};

// Accepts everything and counts its lifecycle calls: the pipeline is the one owner of its sink's start and stop.
class LifecycleSink final : public Sink {
 public:
  void start() override { ++starts; }
  void send(Batch batch, CompletionCallback done) override { inner_.send(std::move(batch), std::move(done)); }
  void stop(std::chrono::milliseconds) override { ++stops; }
  std::size_t max_event_bytes() const override { return inner_.max_event_bytes(); }
  bool ready() const override { return inner_.ready(); }
  std::atomic<int> starts{0};
  std::atomic<int> stops{0};

 private:
  ControllableSink inner_{[](const Event&) { return std::optional(Outcome::Accepted); }};
};

TEST(pipeline_test, the_pipeline_starts_and_stops_its_sink_once) {
  RedisServer redis;
  add(redis, 3);
  LifecycleSink sink;
  {
    RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
    pipeline.start();
    EXPECT_EQ(sink.starts, 1);
    ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 3; }, 10s));
    EXPECT_EQ(sink.stops, 0);
    pipeline.stop();
    EXPECT_EQ(sink.stops, 1);
    pipeline.stop();
  }  // nor does the destructor stop it again
  EXPECT_EQ(sink.starts, 1);
  EXPECT_EQ(sink.stops, 1);
}

TEST(pipeline_test, a_failed_start_stops_the_sink_it_started) {
  RedisServer redis;
  const RedisConnectionOptions unreachable = redis.connection_options();
  redis.stop();
  auto options = fast_options();
  options.startup_connect_attempts = 1;
  LifecycleSink sink;
  RedisPipeline pipeline(options, unreachable, stream_options(), encoder(), sink);
  EXPECT_THROW(pipeline.start(), RedisConnectionError);
  EXPECT_EQ(sink.starts, 1);
  EXPECT_EQ(sink.stops, 1);
}

TEST(pipeline_test, acks_only_after_the_sink_confirms) {
  RedisServer redis;
  add(redis, 10);
  ControllableSink sink;  // holds everything
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  // The acker has gone round its loop several times (one claim pass each) with nothing confirmed.
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().claim_scans >= 3; }, 10s));
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
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
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(20, 10s));
  // The consumer has not talked to Redis for five poll timeouts: the reader waits for capacity.
  ASSERT_TRUE(wait_until(
      [&] {
        RedisReply consumers = redis.command({"XINFO", "CONSUMERS", kStream, kGroup});
        return consumers.size() == 1 &&
               integer_fields(consumers[0])["idle"] >= 5 * fast_options().poll_timeout.count();
      },
      10s));
  EXPECT_EQ(sink.sent_ids().size(), 20u) << "read beyond MAX_IN_FLIGHT_BATCHES x BATCH_SIZE";
  EXPECT_EQ(pipeline.stats().read, 20u);
  EXPECT_EQ(pending(redis), 20);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  redis.stop();
  sink.complete_held(Outcome::Accepted);
  // The acker has the confirmations while Redis is down: its acks fail, and it keeps them.
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().in_flight_events == 0; }, 10s));
  EXPECT_EQ(pipeline.stats().acked, 0u);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream, encoder(), sink);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
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
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && dead_letters(redis) == 1; }, 10s));
  pipeline.stop();
  EXPECT_EQ(sink.sent_ids().size(), 2u);
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  EXPECT_NE(fields_of(dead[0])["dlq-reason"].find("exceeds"), std::string::npos);
}

// The group vanishes and entries arrive before the connector recreates it (one MULTI: deterministic).
// GROUP_START_ID is "$": recreating the group there would skip them.
class lost_group_test : public ::testing::TestWithParam<std::string> {};

TEST_P(lost_group_test, entries_the_lost_group_had_not_acked_are_delivered) {
  RedisServer redis;
  add(redis, 5);
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  auto stream = stream_options();
  stream.group_start_id = "$";
  redis.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream, encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 5; }, 10s));
  RedisConnection connection(redis.connection_options());
  connection.connect();
  connection.append({"MULTI"});
  if (GetParam() == "group_destroyed") {
    connection.append({"XGROUP", "DESTROY", kStream, kGroup});
  } else {
    connection.append({"DEL", kStream});
  }
  for (int i = 0; i < 5; ++i) connection.append({"XADD", kStream, "*", "after", std::to_string(i)});
  connection.append({"EXEC"});
  for (int i = 0; i < 8; ++i) connection.read_reply();
  std::vector<std::string> after;
  RedisReply range = redis.command({"XRANGE", kStream, "-", "+"});
  for (std::size_t i = 0; i < range.size(); ++i) {
    if (fields_of(range[i]).count("after") != 0) after.emplace_back(range[i][0].str());
  }
  ASSERT_EQ(after.size(), 5u);
  const bool delivered = wait_until(
      [&] {
        const auto sent = sink.sent_ids();
        return pending(redis) == 0 && std::all_of(after.begin(), after.end(), [&](const std::string& id) {
                 return std::find(sent.begin(), sent.end(), id) != sent.end();
               });
      },
      15s);
  pipeline.stop();
  EXPECT_TRUE(delivered) << "entries added while the group was lost were skipped";
}

INSTANTIATE_TEST_SUITE_P(faults, lost_group_test, ::testing::Values("group_destroyed", "stream_deleted"),
                         [](const auto& info) { return info.param; });

TEST(pipeline_test, a_refused_dead_letter_write_leaves_the_entry_pending_and_healthy_entries_flow) {
  RedisServer redis;
  const std::string dead_letter_key = std::string(kStream) + ":dead-letter";
  redis.command({"SET", dead_letter_key, "not a stream"});
  const std::string poison(redis.command({"XADD", kStream, "*", "nobody", "1"}).str());
  for (int i = 0; i < 50; ++i) redis.command({"XADD", kStream, "*", "body", std::to_string(i)});
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder("body"), sink);
  pipeline.start();
  // The 50 healthy entries are acked; the one whose dead-letter write fails is not.
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 50; }, 10s));
  RedisReply left = redis.command({"XPENDING", kStream, kGroup, "-", "+", "10"});
  ASSERT_EQ(left.size(), 1u) << "an entry whose dead-letter write failed was acked";
  EXPECT_EQ(left[0][0].str(), poison);
  // Once the dead-letter key is usable, the same entry moves there and is acked.
  redis.command({"DEL", dead_letter_key});
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0 && dead_letters(redis) == 1; }, 15s));
  pipeline.stop();
  EXPECT_EQ(pipeline.stats().dead_lettered, 1u);
  RedisReply dead = redis.command({"XRANGE", dead_letter_key, "-", "+"});
  EXPECT_EQ(fields_of(dead[0])["dlq-original-id"], poison);
}

// Pending entries of the group whose idle time is at least `idle`, and their delivery counts.
std::map<std::string, long long> idle_pending(RedisServer& redis, std::chrono::milliseconds idle) {
  std::map<std::string, long long> counts;
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup, "-", "+", "1000"});
  for (std::size_t i = 0; i < reply.size(); ++i) {
    if (reply[i][2].integer() >= idle.count()) counts[std::string(reply[i][0].str())] = reply[i][3].integer();
  }
  return counts;
}

// Entries wait with the output for many claim intervals: nothing may claim them (a claim resets their
// idle time and, without JUSTID, adds a delivery), neither this instance nor another one whose output
// is down too.
TEST(pipeline_test, an_output_outage_with_claims_and_restarts_dead_letters_nothing) {
  RedisServer redis;
  const auto ids = add(redis, 20);
  auto options = fast_options();
  options.max_delivery_attempts = 3;
  ControllableSink sink_a, sink_b;  // hold everything: the output never answers
  sink_a.set_ready(false);
  sink_b.set_ready(false);
  {
    RedisPipeline a(options, redis.connection_options(), stream_options("a"), encoder(), sink_a);
    RedisPipeline b(options, redis.connection_options(), stream_options("b"), encoder(), sink_b);
    a.start();
    b.start();
    ASSERT_TRUE(wait_until([&] { return sink_a.held_events() + sink_b.held_events() == 20; }, 10s));
    // The outage lasts until every entry has been idle for 5 x PENDING_MESSAGE_MIN_IDLE_MS.
    const bool untouched =
        wait_until([&] { return idle_pending(redis, 5 * options.claim_min_idle).size() == 20; }, 20s);
    EXPECT_TRUE(untouched) << "entries in flight were claimed during the outage";
    EXPECT_EQ(a.stats().claimed + b.stats().claimed, 0u);
    for (const auto& [id, count] : idle_pending(redis, 0ms)) EXPECT_EQ(count, 1) << id;
  }  // both stop: the entries stay pending with their consumers
  ControllableSink accept([](const Event&) { return std::optional(Outcome::Accepted); });
  RedisPipeline a(options, redis.connection_options(), stream_options("a"), encoder(), accept);
  a.start();  // b stays down: a claims its entries
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0; }, 15s));
  a.stop();
  EXPECT_EQ(dead_letters(redis), 0);
  const auto sent = accept.sent_ids();
  for (const auto& id : ids) EXPECT_NE(std::find(sent.begin(), sent.end(), id), sent.end()) << id;
}

TEST(pipeline_test, claims_never_take_this_instances_own_entries_in_flight) {
  RedisServer redis;
  add(redis, 10);
  ControllableSink sink;  // ready, but holds everything
  RedisPipeline pipeline(fast_options(), redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  // Every entry pending long enough to be claimed, and several claim passes after that. Not read from
  // XPENDING's idle time: XAUTOCLAIM … JUSTID names this instance's own entries too (the pipeline skips
  // them) and resets their idle time, so "all 10 idle" holds only between two passes.
  std::this_thread::sleep_for(fast_options().claim_min_idle);
  const auto scans = pipeline.stats().claim_scans;
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().claim_scans >= scans + 5; }, 10s));
  EXPECT_EQ(pipeline.stats().claimed, 0u);
  EXPECT_EQ(sink.sent_ids().size(), 10u) << "an entry in flight was claimed and sent again";
  for (const auto& [id, count] : idle_pending(redis, 0ms)) EXPECT_EQ(count, 1) << id;
  sink.complete_held(Outcome::Accepted);
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0; }, 10s));
  pipeline.stop();
}

TEST(pipeline_test, retries_while_the_output_accepts_others_count_towards_max_delivery_attempts) {
  RedisServer redis;
  const auto ids = add(redis, 5);
  auto options = fast_options();
  options.max_delivery_attempts = 3;
  ControllableSink sink([&](const Event& event) -> std::optional<Outcome> {
    return event.entry_id == ids[2] ? Outcome::Retry : Outcome::Accepted;
  });
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  // Other entries keep arriving and are accepted: the output is up while the poison entry fails.
  ASSERT_TRUE(wait_until(
      [&] {
        add(redis, 1);
        return dead_letters(redis) == 1;
      },
      20s));
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 0; }, 10s));
  pipeline.stop();
  const auto sent = sink.sent_ids();
  EXPECT_EQ(std::count(sent.begin(), sent.end(), ids[2]), 3);
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  auto fields = fields_of(dead[0]);
  EXPECT_EQ(fields["dlq-original-id"], ids[2]);
  EXPECT_EQ(fields["dlq-deliveries"], "3");
}

TEST(pipeline_test, stop_leaves_unconfirmed_entries_pending_for_redelivery) {
  RedisServer redis;
  add(redis, 10);
  ControllableSink sink;
  auto options = fast_options();
  options.shutdown_grace = 300ms;
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(10, 10s));
  pipeline.stop();  // returns after the grace period although the sink never answers
  EXPECT_EQ(pending(redis), 10);
  EXPECT_EQ(pipeline.stats().acked, 0u);
}

// A stop while the reader hands a full batch to the sink: the read-ahead has already made Redis deliver
// the next batch to this consumer. A graceful stop sends that batch too, so nothing this instance was
// delivered is left pending for another instance to claim after its idle time.
TEST(pipeline_test, a_graceful_stop_sends_the_batch_the_read_ahead_was_delivered) {
  RedisServer redis;
  add(redis, 50);
  std::mutex mutex;
  std::condition_variable changed;
  bool released = false;
  // The first send blocks the reader until the test lets go, with the read-ahead outstanding.
  ControllableSink sink([&](const Event&) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return released; });
    return std::optional(Outcome::Accepted);
  });
  auto options = fast_options();
  options.shutdown_grace = 10s;
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  // Batch 1 is with the sink and the read-ahead's batch 2 delivered.
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 20; }, 10s)) << pending(redis);
  std::thread stopper([&] { pipeline.stop(); });
  // stop() begins while the reader is still in the send.
  EXPECT_TRUE(wait_until([&] { return !pipeline.running(); }, 10s));
  {
    std::lock_guard lock(mutex);
    released = true;
  }
  changed.notify_all();
  stopper.join();
  EXPECT_EQ(pending(redis), 0);
  EXPECT_EQ(sink.sent_ids().size(), 20u);  // batches 1 and 2; nothing read after the stop
  EXPECT_EQ(pipeline.stats().acked, 20u);
}

long long blocked_clients(RedisServer& redis) {
  const std::string info(redis.command({"INFO", "clients"}).str());
  const auto at = info.find("blocked_clients:");
  return at == std::string::npos ? -1 : std::stoll(info.substr(at + 16));
}

// A stop while the reader's XREADGROUP is with Redis and its batch arrives: the reader is given time to
// take that batch and hand it on, instead of having its connection cut with the batch on the wire
// (delivered to this consumer, never sent, pending until claimed).
TEST(pipeline_test, a_stop_while_a_read_is_answered_hands_its_batch_on) {
  RedisServer redis;
  add(redis, 1);  // creates the stream; the group starts at 0, so this one is read first
  ControllableSink sink([](const Event&) { return std::optional(Outcome::Accepted); });
  auto options = fast_options();
  options.poll_timeout = 10s;  // the reader's read is answered by the entries below, never by a timeout
  options.shutdown_grace = 5s;
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 1; }, 10s));
  // The reader's XREADGROUP blocks (it began after the first entry was handed on: it is young).
  ASSERT_TRUE(wait_until([&] { return blocked_clients(redis) == 1; }, 10s));
  std::thread stopper([&] { pipeline.stop(); });
  EXPECT_TRUE(wait_until([&] { return !pipeline.running(); }, 10s));
  // Five entries at once answer the blocked read after stop() has begun.
  RedisConnection other(redis.connection_options());
  other.connect();
  other.append({"MULTI"});
  for (int i = 0; i < 5; ++i) other.append({"XADD", kStream, "*", "n", std::to_string(i)});
  other.append({"EXEC"});
  other.flush();
  for (int i = 0; i < 7; ++i) other.read_reply();
  stopper.join();
  EXPECT_EQ(pending(redis), 0);
  EXPECT_EQ(pipeline.stats().acked, 6u);
}

/// CPU seconds (user + system) this process's thread named `name` has used so far; -1 if none is.
double thread_cpu_seconds(const std::string& name) {
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (comm != name) continue;
    std::string stat;
    std::getline(std::ifstream(task.path() / "stat"), stat);
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {  // state is field 3, utime 14, stime 15
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  return -1;
}

// An output outage with every in-flight batch waiting: a claim cannot run (back-pressure), and its due
// time must not turn the acker's wait into a busy loop that burns a core for the whole outage.
TEST(pipeline_test, the_acker_sleeps_while_back_pressure_holds_claims_back) {
  RedisServer redis;
  add(redis, 40);
  ControllableSink sink;  // holds everything: no completion wakes the acker
  auto options = fast_options();
  options.max_in_flight_batches = 2;
  RedisPipeline pipeline(options, redis.connection_options(), stream_options(), encoder(), sink);
  pipeline.start();
  ASSERT_TRUE(sink.wait_for_sent(20, 10s));
  // The acker names itself when it starts, which a loaded machine can delay.
  ASSERT_TRUE(wait_until([] { return thread_cpu_seconds("acker") >= 0; }, 10s)) << "no thread named acker";
  const double before = thread_cpu_seconds("acker");
  // 20 claim intervals pass while nothing can be claimed, and the acker is alive throughout (it beats
  // at least once a second when idle).
  const auto from = pipeline.counters().acker_heartbeat.last_ms();
  ASSERT_TRUE(wait_until([&] { return pipeline.counters().acker_heartbeat.last_ms() >= from + 2000; }, 10s));
  const double used = thread_cpu_seconds("acker") - before;
  EXPECT_LT(used, 0.5) << "the acker used " << used << " CPU seconds in 2 s of waiting";
  sink.set_policy([](const Event&) { return std::optional(Outcome::Accepted); });
  sink.complete_held(Outcome::Accepted);
  ASSERT_TRUE(wait_until([&] { return pipeline.stats().acked == 40; }, 10s));
  pipeline.stop();
}

}  // namespace
}  // namespace connector
