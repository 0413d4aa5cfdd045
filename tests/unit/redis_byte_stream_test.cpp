// ByteStream alone, against loopback sockets made here: no Redis server.
#include "redis/byte_stream.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/loopback_listener.hpp"
#include "support/tcp_proxy.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using Clock = ByteStream::Clock;

ByteStreamOptions loopback(std::uint16_t port) {
  ByteStreamOptions options;
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = port;
  options.endpoint.password = "never-shown";
  options.connect_timeout = 5s;
  return options;
}

/// A loopback port that accepts one connection, reads one request, answers `greeting` and closes it
/// (having read the request, the close is a FIN, not a reset).
class OneShotServer {
 public:
  explicit OneShotServer(std::string greeting) {
    thread_ = std::thread([this, greeting = std::move(greeting)] {
      const int client = listener_.accept();
      if (client < 0) return;
      char request[64];
      [[maybe_unused]] const auto got = ::recv(client, request, sizeof request, 0);
      [[maybe_unused]] const auto sent = ::send(client, greeting.data(), greeting.size(), MSG_NOSIGNAL);
      ::close(client);
    });
  }
  ~OneShotServer() {
    listener_.shutdown();  // ends an accept() that never got a client
    thread_.join();
  }
  std::uint16_t port() const { return listener_.port(); }

 private:
  testing::LoopbackListener listener_;
  std::thread thread_;
};

TEST(redis_byte_stream_test, read_from_a_silent_peer_ends_at_the_deadline) {
  testing::SilentListener listener;
  ByteStream stream(loopback(listener.port()));
  stream.connect(Clock::now() + 5s);
  ASSERT_TRUE(stream.is_open());
  char buffer[16];
  try {
    stream.read_some(buffer, sizeof buffer, Clock::now() + 200ms);
    ADD_FAILURE() << "read_some() returned";
  } catch (const RedisConnectionError& error) {
    EXPECT_EQ(error.kind(), RedisErrorKind::Timeout) << error.what();
  }
  EXPECT_FALSE(stream.is_open());
}

TEST(redis_byte_stream_test, interrupt_from_another_thread_wakes_a_read) {
  testing::SilentListener listener;
  ByteStream stream(loopback(listener.port()));
  stream.connect(Clock::now() + 5s);
  auto reading = std::async(std::launch::async, [&] {
    char buffer[16];
    try {
      stream.read_some(buffer, sizeof buffer, Clock::now() + 60s);
      return std::string("read returned");
    } catch (const RedisConnectionError& error) {
      return error.kind() == RedisErrorKind::Timeout ? std::string("timed out") : std::string(error.what());
    }
  });
  stream.interrupt();  // before or during the read: either way the read ends at once
  ASSERT_EQ(reading.wait_for(30s), std::future_status::ready);
  const std::string message = reading.get();
  EXPECT_NE(message.find("interrupted"), std::string::npos) << message;
  EXPECT_NE(message.find("127.0.0.1:" + std::to_string(listener.port())), std::string::npos) << message;
  // connect() clears the interruption.
  stream.connect(Clock::now() + 5s);
  EXPECT_TRUE(stream.is_open());
}

TEST(redis_byte_stream_test, connection_refused_names_the_address_and_no_secret) {
  const auto port = testing::free_port();
  ByteStream stream(loopback(port));
  try {
    stream.connect(Clock::now() + 5s);
    ADD_FAILURE() << "connect() succeeded";
  } catch (const RedisConnectionError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("redis://127.0.0.1:" + std::to_string(port)), std::string::npos) << message;
    EXPECT_NE(message.find("connection refused"), std::string::npos) << message;
    EXPECT_EQ(message.find("never-shown"), std::string::npos) << message;
  }
  EXPECT_FALSE(stream.is_open());
}

TEST(redis_byte_stream_test, bytes_then_the_peer_closing) {
  OneShotServer server("+PONG\r\n");
  ByteStream stream(loopback(server.port()));
  stream.connect(Clock::now() + 5s);
  stream.write_all("PING\r\n", Clock::now() + 5s);
  std::string received;
  try {
    for (;;) {
      char buffer[4];  // smaller than the greeting: read_some returns what fits
      received.append(buffer, stream.read_some(buffer, sizeof buffer, Clock::now() + 10s));
    }
  } catch (const RedisConnectionError& closed) {
    EXPECT_EQ(closed.kind(), RedisErrorKind::Closed) << closed.what();
    EXPECT_NE(std::string(closed.what()).find("closed the connection"), std::string::npos) << closed.what();
  }
  EXPECT_EQ(received, "+PONG\r\n");
  EXPECT_FALSE(stream.is_open());
}

}  // namespace
}  // namespace connector
