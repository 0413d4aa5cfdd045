#include "redis/stream_consumer.hpp"

#include <gtest/gtest.h>

namespace connector {
namespace {

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
