// Replies no Redis would send, from a scripted loopback peer: a clear error naming the command or the
// protocol, never a crash.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "redis/stream_consumer.hpp"
#include "support/loopback_listener.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;

/// Accepts one client, answers its handshake PING, then answers each next write of commands with the
/// next of `replies` (pipelined commands arrive in one write: give their replies as one).
class ScriptedRedis {
 public:
  explicit ScriptedRedis(std::string reply) : ScriptedRedis(std::vector<std::string>{std::move(reply)}) {}
  explicit ScriptedRedis(std::vector<std::string> replies)
      : thread_([this, replies = std::move(replies)] { serve(replies); }) {}
  ~ScriptedRedis() {
    listener_.shutdown();
    thread_.join();
  }
  RedisConnectionOptions options() const {
    RedisConnectionOptions options;
    options.endpoint.host = "127.0.0.1";
    options.endpoint.port = listener_.port();
    options.command_timeout = 10s;
    return options;
  }

 private:
  void serve(std::vector<std::string> replies) {
    const int client = listener_.accept();
    if (client < 0) return;
    char buffer[4096];
    replies.insert(replies.begin(), "+PONG\r\n");
    for (const std::string& answer : replies) {
      if (::recv(client, buffer, sizeof buffer, 0) <= 0) break;
      if (::send(client, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) break;
    }
    while (::recv(client, buffer, sizeof buffer, 0) > 0) {
    }
    ::close(client);
  }

  testing::LoopbackListener listener_;  // before thread_, which uses it
  std::thread thread_;
};

/// The error text of StreamConsumer::read(">") answered with `reply`.
template <typename Error>
std::string read_error(const std::string& reply) {
  ScriptedRedis server(reply);
  RedisConnection connection(server.options());
  connection.connect();
  StreamConsumer consumer(connection, StreamConsumerOptions{"s", "g", "c", "0", "", ClaimMode::Auto});
  try {
    consumer.read(">", 10, std::nullopt);
  } catch (const Error& error) {
    return error.what();
  }
  ADD_FAILURE() << "no error for " << reply;
  return {};
}

TEST(redis_malformed_reply_test, entries_that_are_not_an_array_name_xreadgroup) {
  const auto message = read_error<RedisStreamError>("*1\r\n*2\r\n$1\r\ns\r\n:5\r\n");
  EXPECT_NE(message.find("XREADGROUP"), std::string::npos) << message;
  EXPECT_NE(message.find("integer 5"), std::string::npos) << message;
}

TEST(redis_malformed_reply_test, an_entry_id_that_is_not_a_string_names_xreadgroup) {
  const auto message = read_error<RedisStreamError>("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n:1\r\n*0\r\n");
  EXPECT_NE(message.find("XREADGROUP: expected [id, fields]"), std::string::npos) << message;
}

TEST(redis_malformed_reply_test, an_odd_number_of_field_strings_names_the_entry) {
  const auto message =
      read_error<RedisStreamError>("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*1\r\n$1\r\nf\r\n");
  EXPECT_NE(message.find("entry 1-1 has malformed fields"), std::string::npos) << message;
}

TEST(redis_malformed_reply_test, a_reply_of_the_wrong_shape_names_the_stream) {
  const auto message = read_error<RedisStreamError>("*2\r\n:1\r\n:2\r\n");
  EXPECT_NE(message.find("XREADGROUP on stream 's': unexpected reply array of 2"), std::string::npos) << message;
}

TEST(redis_malformed_reply_test, a_malformed_xrange_reply_names_xrange_and_the_next_reply_is_still_read) {
  // Two pending entries: the first XRANGE answer is no entries array, the second is fine. Both are read,
  // so the connection stays in step for the next command.
  ScriptedRedis server(
      std::vector<std::string>{"*2\r\n*4\r\n$3\r\n1-1\r\n$1\r\nc\r\n:5\r\n:1\r\n"
                               "*4\r\n$3\r\n1-2\r\n$1\r\nc\r\n:5\r\n:1\r\n",
                               ":5\r\n*1\r\n*2\r\n$3\r\n1-2\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n"});
  RedisConnection connection(server.options());
  connection.connect();
  StreamConsumer consumer(connection, StreamConsumerOptions{"s", "g", "c", "0", "", ClaimMode::Auto});
  try {
    consumer.read_own_pending("0", 10);
    ADD_FAILURE() << "no error for a malformed XRANGE reply";
  } catch (const RedisStreamError& error) {
    EXPECT_NE(std::string(error.what()).find("XRANGE: expected an array of entries, got integer 5"),
              std::string::npos)
        << error.what();
  }
  EXPECT_TRUE(connection.connected());
  EXPECT_EQ(connection.pending_replies(), 0u);
}

TEST(redis_malformed_reply_test, bytes_that_are_not_resp_are_a_protocol_error_and_close_the_connection) {
  const auto message = read_error<RedisConnectionError>("?what is this\r\n");
  EXPECT_NE(message.find("Protocol error"), std::string::npos) << message;
}

TEST(redis_malformed_reply_test, nesting_deeper_than_the_reader_takes_is_a_protocol_error) {
  std::string deep;
  for (int i = 0; i < 10; ++i) deep += "*1\r\n";
  const auto message = read_error<RedisConnectionError>(deep + ":1\r\n");
  EXPECT_NE(message.find("Protocol error"), std::string::npos) << message;
}

}  // namespace
}  // namespace connector
