// StreamConsumer's reads of the pending list against a real redis-server: exact delivery counts, and
// no delivery added by re-reading or claiming.
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <regex>

#include "redis/stream_consumer.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::RedisServer;

constexpr const char* kStream = "sc:stream";
constexpr const char* kGroup = "sc-group";

class stream_consumer_pending_test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 100; ++i)
      ids_.emplace_back(redis_.command({"XADD", kStream, "*", "n", std::to_string(i)}).str());
    redis_.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
    connection_.connect();
    consumer_.check_server();
  }
  long long deliveries(const std::string& id) {
    RedisReply reply = redis_.command({"XPENDING", kStream, kGroup, id, id, "1"});
    return reply.size() == 1 ? reply[0][3].integer() : 0;
  }
  std::map<std::string, unsigned> counts(const std::vector<StreamEntry>& entries) {
    std::map<std::string, unsigned> result;
    for (const auto& entry : entries) result[entry.id] = entry.deliveries;
    return result;
  }

  RedisServer redis_;
  std::vector<std::string> ids_;
  RedisConnection connection_{redis_.connection_options()};
  StreamConsumer consumer_{connection_,
                           StreamConsumerOptions{kStream, kGroup, "me", "0", "", ClaimMode::Auto}};
};

// Entries 0 and 99 belong to an idle consumer, 1..98 to this one: a claimed page spans 98 entries of
// ours, and the poison entry at its end must still get its count (20), not a default of 1.
TEST_F(stream_consumer_pending_test, claimed_entries_carry_their_exact_delivery_counts_and_claims_add_none) {
  redis_.command({"XREADGROUP", "GROUP", kGroup, "dead", "COUNT", "1", "STREAMS", kStream, ">"});
  redis_.command({"XREADGROUP", "GROUP", kGroup, "me", "COUNT", "98", "STREAMS", kStream, ">"});
  redis_.command({"XREADGROUP", "GROUP", kGroup, "dead", "COUNT", "1", "STREAMS", kStream, ">"});
  redis_.command({"XCLAIM", kStream, kGroup, "dead", "0", ids_[0], "IDLE", "600000", "JUSTID"});
  redis_.command(
      {"XCLAIM", kStream, kGroup, "dead", "0", ids_[99], "IDLE", "600000", "RETRYCOUNT", "20", "JUSTID"});
  for (const ClaimMode mode : {ClaimMode::AutoClaim, ClaimMode::PendingAndClaim}) {
    StreamConsumer consumer(connection_, {kStream, kGroup, "me", "0", "", mode});
    consumer.check_server();
    std::vector<StreamEntry> claimed;
    std::string cursor = "0-0";
    do {
      ClaimResult page = consumer.claim(300s, cursor, 10, [](std::string_view) { return false; });
      claimed.insert(claimed.end(), page.entries.begin(), page.entries.end());
      cursor = page.next_cursor;
    } while (cursor != "0-0");
    EXPECT_EQ(counts(claimed), (std::map<std::string, unsigned>{{ids_[0], 1}, {ids_[99], 20}}));
    EXPECT_EQ(deliveries(ids_[99]), 20) << "a claim added a delivery";
    // Claimed now, but idle again for the second mode's round.
    redis_.command({"XCLAIM", kStream, kGroup, "dead", "0", ids_[0], ids_[99], "IDLE", "600000", "JUSTID"});
  }
}

TEST_F(stream_consumer_pending_test, reading_own_pending_again_adds_no_delivery) {
  redis_.command({"XREADGROUP", "GROUP", kGroup, "me", "COUNT", "30", "STREAMS", kStream, ">"});
  redis_.command({"XCLAIM", kStream, kGroup, "me", "0", ids_[25], "RETRYCOUNT", "7", "JUSTID"});
  std::vector<StreamEntry> read;
  std::string after = "0";
  for (;;) {
    auto page = consumer_.read_own_pending(after, 10);
    if (page.empty()) break;
    after = page.back().id;
    read.insert(read.end(), page.begin(), page.end());
  }
  ASSERT_EQ(read.size(), 30u);
  EXPECT_EQ(read[25].deliveries, 7u);
  EXPECT_EQ(read[24].deliveries, 1u);
  EXPECT_EQ(read[0].fields.at(0).value, "0");
  EXPECT_EQ(deliveries(ids_[24]), 1) << "re-reading the own pending list added a delivery";
}

}  // namespace
}  // namespace connector

namespace connector {
namespace {
// dlq-time is UTC with milliseconds, "2026-11-27T18:04:03.537Z", within the seconds around the call.
TEST_F(stream_consumer_pending_test, dead_letter_time_is_utc_iso8601_with_milliseconds) {
  const auto before = std::chrono::system_clock::now() - 2s;
  StreamEntry entry;
  entry.id = ids_[0];
  entry.fields = {{"n", "0"}};
  ASSERT_EQ(consumer_.dead_letter({DeadLetter{&entry, "test", entry.deliveries}}), std::vector<std::string>{""});
  RedisReply dead = redis_.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  ASSERT_EQ(dead.size(), 1u);
  std::string time;
  for (std::size_t i = 0; i + 1 < dead[0][1].size(); i += 2) {
    if (dead[0][1][i].str() == "dlq-time") time = dead[0][1][i + 1].str();
  }
  ASSERT_TRUE(std::regex_match(time, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)"))) << time;
  std::tm utc{};
  ASSERT_NE(::strptime(time.c_str(), "%Y-%m-%dT%H:%M:%S", &utc), nullptr) << time;
  const auto written = std::chrono::system_clock::from_time_t(::timegm(&utc));
  EXPECT_GE(written, std::chrono::floor<std::chrono::seconds>(before)) << time;
  EXPECT_LE(written, std::chrono::system_clock::now() + 2s) << time;
}
}  // namespace
}  // namespace connector
