#include "redis/stream_consumer.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

namespace connector {
namespace {

/// Parses literal RESP bytes into an owned reply, as the connection would.
RedisReply parse_resp(const std::string& bytes) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, bytes.data(), bytes.size());
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &reply), REDIS_OK);
  redisReaderFree(reader);
  return RedisReply(static_cast<redisReply*>(reply));
}

TEST(stream_consumer_test, parses_entries_and_marks_deleted_ones) {
  using namespace std::string_literals;
  const RedisReply reply = parse_resp(
      "*2\r\n"
      "*2\r\n$3\r\n1-0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$3\r\nx\0y\r\n"
      "*2\r\n$3\r\n2-0\r\n*-1\r\n"s);
  const auto entries = parse_entries(reply, "XRANGE");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].id, "1-0");
  ASSERT_EQ(entries[0].fields.size(), 2u);
  EXPECT_EQ(entries[0].fields[1].name, "b");
  EXPECT_EQ(entries[0].fields[1].value, std::string("x\0y", 3));
  EXPECT_FALSE(entries[0].deleted);
  EXPECT_EQ(entries[1].id, "2-0");
  EXPECT_TRUE(entries[1].deleted);
}

TEST(stream_consumer_test, nil_is_no_entries_and_a_bad_shape_names_the_command) {
  EXPECT_TRUE(parse_entries(parse_resp("*-1\r\n"), "XREADGROUP").empty());
  try {
    parse_entries(parse_resp(":5\r\n"), "XAUTOCLAIM");
    FAIL() << "expected RedisStreamError";
  } catch (const RedisStreamError& error) {
    EXPECT_NE(std::string(error.what()).find("XAUTOCLAIM"), std::string::npos);
  }
  EXPECT_THROW(parse_entries(parse_resp("*1\r\n*2\r\n$3\r\n1-0\r\n*1\r\n$1\r\na\r\n"), "XRANGE"),
               RedisStreamError);
  EXPECT_THROW(parse_entries(parse_resp("*1\r\n*1\r\n$3\r\n1-0\r\n"), "XRANGE"), RedisStreamError);
}

TEST(stream_consumer_test, reads_the_server_version_from_info) {
  const auto version = parse_redis_version("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n");
  ASSERT_TRUE(version);
  EXPECT_EQ(version->major, 7);
  EXPECT_EQ(version->minor, 0);
  EXPECT_EQ(version->patch, 15);
  EXPECT_TRUE(version->at_least(6, 2));
  EXPECT_FALSE(parse_redis_version("# Server\r\nredis_version:4.0.9\r\n")->at_least(5, 0));
  EXPECT_TRUE(parse_redis_version("redis_version:6.2\r\n")->at_least(6, 2));
  EXPECT_FALSE(parse_redis_version("no version here"));
  EXPECT_FALSE(parse_redis_version("redis_version:x.y\r\n"));
}

}  // namespace
}  // namespace connector
