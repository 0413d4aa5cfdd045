#include "redis/redis_reply.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <string>
#include <string_view>
#include <utility>

namespace connector {
namespace {

// Parses literal RESP bytes with hiredis's reader, as RedisConnection does with bytes from a socket.
RedisReply parse(std::string_view resp) {
  redisReader* reader = redisReaderCreate();
  EXPECT_EQ(redisReaderFeed(reader, resp.data(), resp.size()), REDIS_OK);
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &raw), REDIS_OK);
  redisReaderFree(reader);
  EXPECT_NE(raw, nullptr) << "incomplete RESP in the test";
  return RedisReply(static_cast<redisReply*>(raw));
}

TEST(redis_reply_test, status_reply) {
  const auto reply = parse("+OK\r\n");
  EXPECT_TRUE(reply.is_status());
  EXPECT_FALSE(reply.is_error());
  EXPECT_FALSE(reply.is_nil());
  EXPECT_EQ(reply.str(), "OK");
  EXPECT_EQ(reply.describe(), "status reply: OK");
}

TEST(redis_reply_test, error_reply) {
  const auto reply = parse("-BUSYGROUP Consumer Group name already exists\r\n");
  EXPECT_TRUE(reply.is_error());
  EXPECT_FALSE(reply.is_status());
  EXPECT_EQ(reply.str(), "BUSYGROUP Consumer Group name already exists");
  EXPECT_EQ(reply.describe(), "error reply: BUSYGROUP Consumer Group name already exists");
}

TEST(redis_reply_test, every_error_code_of_the_table_is_read_from_its_reply) {
  const std::pair<std::string_view, RedisReplyCode> table[] = {
      {"NOGROUP No such key 's' or consumer group 'g'", RedisReplyCode::NoGroup},
      {"UNBLOCKED the stream key no longer exists", RedisReplyCode::Unblocked},
      {"WRONGTYPE Operation against a key holding the wrong kind of value", RedisReplyCode::WrongType},
      {"BUSYGROUP Consumer Group name already exists", RedisReplyCode::BusyGroup},
      {"OOM command not allowed when used memory > 'maxmemory'.", RedisReplyCode::Oom},
      {"NOPERM this user has no permissions to run the 'client|setname' command", RedisReplyCode::NoPerm},
      {"NOAUTH Authentication required.", RedisReplyCode::NoAuth},
      {"READONLY You can't write against a read only replica.", RedisReplyCode::ReadOnly},
      {"MOVED 3999 127.0.0.1:6381", RedisReplyCode::Moved},
      {"ASK 3999 127.0.0.1:6381", RedisReplyCode::Ask},
  };
  for (const auto& [text, code] : table) {
    EXPECT_EQ(redis_reply_code(text), code) << text;
    const std::string_view word = redis_reply_word(code);
    EXPECT_EQ(text.substr(0, word.size() + 1), std::string(word) + " ") << text;
    EXPECT_EQ(redis_reply_code(word), code) << word;  // a code without a message
  }
}

TEST(redis_reply_test, a_code_is_a_whole_word_in_capitals) {
  EXPECT_EQ(redis_reply_code("ERR unknown command"), RedisReplyCode::Other);
  EXPECT_EQ(redis_reply_code("ASKING is not a reply"), RedisReplyCode::Other);
  EXPECT_EQ(redis_reply_code("OOMKILLED"), RedisReplyCode::Other);
  EXPECT_EQ(redis_reply_code("nogroup lower case"), RedisReplyCode::Other);
  EXPECT_EQ(redis_reply_code(""), RedisReplyCode::Other);
  EXPECT_EQ(redis_reply_word(RedisReplyCode::Other), "");
}

TEST(redis_reply_test, integer_reply) {
  const auto reply = parse(":-42\r\n");
  EXPECT_TRUE(reply.is_integer());
  EXPECT_EQ(reply.integer(), -42);
  EXPECT_EQ(reply.str(), "");
  EXPECT_EQ(reply.size(), 0u);
  EXPECT_EQ(reply.describe(), "integer -42");
}

TEST(redis_reply_test, bulk_string_is_binary_safe) {
  const auto reply = parse(std::string("$5\r\na\0b\r\n\r\n", 11));
  EXPECT_TRUE(reply.is_string());
  EXPECT_EQ(reply.str(), std::string_view("a\0b\r\n", 5));
  EXPECT_EQ(reply.integer(), 0);
  EXPECT_EQ(reply.describe(), "string of 5 bytes: \"a\\x00b\\x0d\\x0a\"");
}

TEST(redis_reply_test, nil_bulk_and_nil_array) {
  EXPECT_TRUE(parse("$-1\r\n").is_nil());
  EXPECT_TRUE(parse("*-1\r\n").is_nil());
  EXPECT_EQ(parse("$-1\r\n").describe(), "nil");
  EXPECT_FALSE(parse("$0\r\n\r\n").is_nil());
  EXPECT_EQ(parse("$0\r\n\r\n").str(), "");
}

TEST(redis_reply_test, default_view_is_nil) {
  const RedisReplyView view;
  EXPECT_TRUE(view.is_nil());
  EXPECT_FALSE(view.is_array());
  EXPECT_EQ(view.size(), 0u);
  EXPECT_TRUE(view[0].is_nil());
  EXPECT_EQ(view.str(), "");
  EXPECT_EQ(view.describe(), "nil");
  const RedisReply empty;
  EXPECT_FALSE(static_cast<bool>(empty));
  EXPECT_TRUE(empty.is_nil());
}

TEST(redis_reply_test, nested_arrays_like_xreadgroup) {
  // [[stream, [[id, [f1, v1, f2, v2]], [id2, nil]]]] -- a deleted pending entry comes back as [id, nil].
  const auto reply = parse(
      "*1\r\n"
      "*2\r\n$1\r\ns\r\n"
      "*2\r\n"
      "*2\r\n$3\r\n1-0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
      "*2\r\n$3\r\n2-0\r\n$-1\r\n");
  ASSERT_TRUE(reply.is_array());
  EXPECT_EQ(reply.size(), 1u);
  EXPECT_EQ(reply.describe(), "array of 1");
  const auto stream = reply[0];
  ASSERT_EQ(stream.size(), 2u);
  EXPECT_EQ(stream[0].str(), "s");
  const auto entries = stream[1];
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0][0].str(), "1-0");
  ASSERT_EQ(entries[0][1].size(), 4u);
  EXPECT_EQ(entries[0][1][0].str(), "f1");
  EXPECT_EQ(entries[0][1][3].str(), "v2");
  EXPECT_EQ(entries[1][0].str(), "2-0");
  EXPECT_TRUE(entries[1][1].is_nil());
}

TEST(redis_reply_test, out_of_range_index_is_nil) {
  const auto reply = parse("*2\r\n:1\r\n:2\r\n");
  EXPECT_EQ(reply[1].integer(), 2);
  EXPECT_TRUE(reply[2].is_nil());
  EXPECT_TRUE(reply[1000000].is_nil());
  EXPECT_TRUE(reply[0][0].is_nil());  // indexing a non-array
  EXPECT_EQ(reply[2][5].size(), 0u);
}

TEST(redis_reply_test, empty_array) {
  const auto reply = parse("*0\r\n");
  EXPECT_TRUE(reply.is_array());
  EXPECT_FALSE(reply.is_nil());
  EXPECT_EQ(reply.size(), 0u);
  EXPECT_EQ(reply.describe(), "array of 0");
}

TEST(redis_reply_test, describe_truncates_long_text) {
  const std::string text(10000, 'x');
  const auto reply = parse("-ERR " + text + "\r\n");
  const auto description = reply.describe();
  EXPECT_LT(description.size(), 200u);
  EXPECT_EQ(description.rfind("error reply: ERR xxx", 0), 0u);
  EXPECT_NE(description.find("…"), std::string::npos);
}

TEST(redis_reply_test, move_transfers_ownership_and_leaves_nil) {
  auto first = parse("*1\r\n$2\r\nok\r\n");
  RedisReply second(std::move(first));
  EXPECT_TRUE(first.is_nil());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_FALSE(static_cast<bool>(first));
  EXPECT_EQ(second[0].str(), "ok");
  RedisReply third;
  third = std::move(second);
  EXPECT_TRUE(second.is_nil());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(third[0].str(), "ok");
}

}  // namespace
}  // namespace connector
