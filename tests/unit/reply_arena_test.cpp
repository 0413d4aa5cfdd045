// Replies built in a ReplyArena must be the same trees hiredis builds with its own allocator.
#include "redis/reply_arena.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <string_view>

#include "redis/redis_reply.hpp"

namespace connector {
namespace {

struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
using Reader = std::unique_ptr<redisReader, ReaderFree>;

// Feeds `resp` in pieces of `step` bytes, as replies arrive from a socket, and returns the first reply.
RedisReply parse_in_arena(std::string_view resp, std::size_t step) {
  Reader reader(redisReaderCreateWithFunctions(reply_arena_functions()));
  auto arena = ReplyArena::take();
  reader->privdata = arena.get();
  void* raw = nullptr;
  for (std::size_t at = 0; raw == nullptr && at < resp.size(); at += step) {
    EXPECT_EQ(redisReaderFeed(reader.get(), resp.data() + at, std::min(step, resp.size() - at)), REDIS_OK);
    EXPECT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_OK) << reader->errstr;
  }
  EXPECT_NE(raw, nullptr) << "incomplete RESP in the test";
  return RedisReply(static_cast<redisReply*>(raw), std::move(arena));
}

RedisReply parse_with_hiredis(std::string_view resp) {
  Reader reader(redisReaderCreate());
  EXPECT_EQ(redisReaderFeed(reader.get(), resp.data(), resp.size()), REDIS_OK);
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader.get(), &raw), REDIS_OK);
  return RedisReply(static_cast<redisReply*>(raw));
}

// The whole tree, every type, length and byte: equal texts mean equal trees.
std::string dump(RedisReplyView reply) {
  std::string out = reply.describe();
  if (reply.is_string() || reply.is_status() || reply.is_error()) out += "=" + std::string(reply.str());
  if (reply.is_array()) {
    out += "[";
    for (std::size_t i = 0; i < reply.size(); ++i) out += dump(reply[i]) + ",";
    out += "]";
  }
  return out;
}

std::string bulk(const std::string& text) { return "$" + std::to_string(text.size()) + "\r\n" + text + "\r\n"; }

TEST(reply_arena_test, every_reply_type_builds_the_tree_hiredis_builds) {
  const std::string binary("a\0b\r\n\xff", 6);
  const std::string resp = "*7\r\n+OK\r\n-ERR no\r\n:-42\r\n$-1\r\n*0\r\n*-1\r\n*2\r\n*2\r\n" + bulk("1-1") +
                           "*4\r\n" + bulk("name") + bulk(binary) + bulk("") + bulk("v") + "*2\r\n" + bulk("1-2") +
                           "$-1\r\n";
  const std::string expected = dump(parse_with_hiredis(resp));
  ASSERT_NE(expected.find(binary), std::string::npos);
  for (const std::size_t step : {resp.size(), std::size_t{1}, std::size_t{7}}) {
    EXPECT_EQ(dump(parse_in_arena(resp, step)), expected) << "fed " << step << " bytes at a time";
  }
}

TEST(reply_arena_test, a_reply_larger_than_any_block_is_whole_and_the_arena_serves_the_next) {
  const std::string big(5 * 1024 * 1024 + 3, 'x');  // beyond the largest block an arena keeps
  std::string resp = "*3\r\n" + bulk(big) + bulk("after") + "*1000\r\n";
  for (int i = 0; i < 1000; ++i) resp += bulk(std::to_string(i));
  {
    const RedisReply reply = parse_in_arena(resp, 64 * 1024);
    EXPECT_EQ(reply[0].str(), big);
    EXPECT_EQ(reply[1].str(), "after");
    EXPECT_EQ(reply[2][999].str(), "999");
  }
  // The released arena is reused by the next reply on this thread.
  EXPECT_EQ(dump(parse_in_arena("*1\r\n:7\r\n", 3)), "array of 1[integer 7,]");
}

TEST(reply_arena_test, moved_replies_keep_their_tree) {
  RedisReply first = parse_in_arena("*1\r\n$5\r\nfirst\r\n", 4);
  RedisReply second = parse_in_arena("*1\r\n$6\r\nsecond\r\n", 4);
  RedisReply moved = std::move(first);
  EXPECT_EQ(moved[0].str(), "first");
  moved = std::move(second);  // the old tree's arena is released, the new one kept
  EXPECT_EQ(moved[0].str(), "second");
  EXPECT_TRUE(first.is_nil());
  EXPECT_FALSE(static_cast<bool>(second));
}

}  // namespace
}  // namespace connector
