// StreamConsumer's read-ahead against a real redis-server: every entry once and in order, the next
// batch already delivered while the caller handles the current one, and the connection kept in step.
#include <gtest/gtest.h>

#include "redis/stream_consumer.hpp"
#include "support/child_process.hpp"  // wait_until
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::RedisServer;

constexpr const char* kStream = "ra:stream";
constexpr const char* kGroup = "ra-group";
const std::function<bool()> kAlways = [] { return true; };

class stream_consumer_read_ahead_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 25; ++i) ids_.emplace_back(redis_.command({"XADD", kStream, "*", "n", std::to_string(i)}).str());
    redis_.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
    connection_.connect();
  }
  long long pending() { return redis_.command({"XPENDING", kStream, kGroup})[0].integer(); }
  std::vector<std::string> ids_of(const std::vector<StreamEntry>& entries) {
    std::vector<std::string> ids;
    for (const auto& entry : entries) ids.push_back(entry.id);
    return ids;
  }

  RedisServer redis_;
  std::vector<std::string> ids_;
  RedisConnection connection_{redis_.connection_options()};
  StreamConsumer consumer_{connection_, StreamConsumerOptions{kStream, kGroup, "me", "0", "", ClaimMode::Auto}};
};

TEST_F(stream_consumer_read_ahead_test, every_entry_once_in_order_with_the_next_batch_already_read) {
  std::vector<std::string> seen;
  const auto first = consumer_.read(">", 10, 100ms, kAlways);
  ASSERT_EQ(first.size(), 10u);
  // A full batch: the next XREADGROUP went out with it, so Redis delivered 20 entries by now.
  EXPECT_TRUE(::connector::testing::wait_until([&] { return pending() == 20; }, 10s)) << pending();
  EXPECT_EQ(connection_.pending_replies(), 1u);
  for (auto batch = first; !batch.empty(); batch = consumer_.read(">", 10, 100ms, kAlways)) {
    const auto ids = ids_of(batch);
    seen.insert(seen.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(seen, ids_);
  EXPECT_EQ(connection_.pending_replies(), 0u);  // a short batch sends no read-ahead
}

TEST_F(stream_consumer_read_ahead_test, another_command_drops_the_read_ahead_and_its_entries_stay_pending) {
  ASSERT_EQ(consumer_.read(">", 10, 100ms, kAlways).size(), 10u);
  // Any other command first reads the read-ahead's reply; its entries are this consumer's pending ones.
  const auto own = consumer_.read_own_pending("0", 100);
  EXPECT_EQ(ids_of(own), std::vector<std::string>(ids_.begin(), ids_.begin() + 20));
  EXPECT_EQ(connection_.pending_replies(), 0u);
  EXPECT_EQ(ids_of(consumer_.read(">", 10, 100ms, kAlways)), std::vector<std::string>(ids_.begin() + 20, ids_.end()));
}

TEST_F(stream_consumer_read_ahead_test, a_reconnect_loses_the_read_ahead_and_reading_goes_on) {
  ASSERT_EQ(consumer_.read(">", 10, 100ms, kAlways).size(), 10u);
  connection_.close();
  connection_.connect();
  EXPECT_EQ(ids_of(consumer_.read(">", 10, 100ms, kAlways)), std::vector<std::string>(ids_.begin() + 20, ids_.end()));
  EXPECT_EQ(pending(), 25);  // nothing acked: the lost read-ahead's entries wait in the pending list
}

TEST_F(stream_consumer_read_ahead_test, the_caller_is_asked_once_a_full_batch_came_in_and_may_refuse) {
  int asked = 0;
  const std::function<bool()> refuse = [&] {
    ++asked;
    return false;
  };
  ASSERT_EQ(consumer_.read(">", 10, 100ms, refuse).size(), 10u);
  EXPECT_EQ(asked, 1);
  EXPECT_FALSE(consumer_.read_ahead_outstanding());
  EXPECT_EQ(pending(), 10);  // nothing more was delivered
  ASSERT_EQ(consumer_.read(">", 10, 100ms, refuse).size(), 10u);
  ASSERT_EQ(consumer_.read(">", 10, 100ms, refuse).size(), 5u);  // a short batch: not asked
  EXPECT_EQ(asked, 2);
}

TEST_F(stream_consumer_read_ahead_test, a_stop_takes_the_delivered_read_ahead_and_reads_nothing_new) {
  ASSERT_EQ(consumer_.read(">", 10, 100ms, kAlways).size(), 10u);
  ASSERT_TRUE(consumer_.read_ahead_outstanding());
  EXPECT_EQ(ids_of(consumer_.take_delivered_read_ahead(10)),
            std::vector<std::string>(ids_.begin() + 10, ids_.begin() + 20));
  EXPECT_FALSE(consumer_.read_ahead_outstanding());
  EXPECT_TRUE(consumer_.take_delivered_read_ahead(10).empty());
  EXPECT_EQ(connection_.pending_replies(), 0u);
  EXPECT_EQ(pending(), 20);  // the last 5 were never delivered
}

TEST_F(stream_consumer_read_ahead_test, a_read_ahead_that_found_nothing_answers_at_once_without_blocking) {
  for (int batch = 0; batch < 5; ++batch) ASSERT_EQ(consumer_.read(">", 5, 100ms, kAlways).size(), 5u);
  ASSERT_TRUE(consumer_.read_ahead_outstanding());  // sent after the fifth full batch; the stream is empty
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(consumer_.read(">", 5, 30s, kAlways).empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);  // not the 30 s BLOCK
  EXPECT_FALSE(consumer_.read_ahead_outstanding());
}

}  // namespace
}  // namespace connector
