// The connector's end of an AMQP WebSocket, between two real Beast WebSockets joined by Beast's in-memory
// test stream, which counts the writes that reach it.
#include "eventhubs/amqp_streams.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>

#include <string>

namespace connector {
namespace {

using namespace amqp_streams;
using CountedWebSocket = websocket::stream<beast::test::stream>;

/// A client and a server WebSocket joined in memory; the client prepared (prepare_client) or not.
struct JoinedWebSockets {
  asio::io_context io;
  CountedWebSocket client{io};
  CountedWebSocket server{io};

  explicit JoinedWebSockets(bool prepared) {
    client.next_layer().connect(server.next_layer());
    if (prepared) prepare_client(client);
  }

  /// The WebSocket handshake, both ends in memory, then both set up for AMQP; true when both agree.
  bool upgrade() {
    ErrorCode accepted = asio::error::would_block;
    ErrorCode handshaken = asio::error::would_block;
    server.async_accept([&](ErrorCode ec) { accepted = ec; });
    client.async_handshake("eventhubs.test", std::string(kAmqpWebSocketPath),
                           [&](ErrorCode ec) { handshaken = ec; });
    io.run();
    io.restart();
    carry_amqp(client);
    carry_amqp(server);
    return !accepted && !handshaken;
  }
};

/// How many writes the client's message of `size` bytes takes to reach the socket under it.
std::size_t writes_for_one_message(bool prepared, std::size_t size) {
  JoinedWebSockets joined(prepared);
  if (!joined.upgrade()) return 0;
  const std::size_t before = joined.client.next_layer().nwrite();
  const std::string message(size, 'a');
  joined.client.write(asio::buffer(message));
  return joined.client.next_layer().nwrite() - before;
}

TEST(amqp_streams_test, a_prepared_client_masks_a_batch_into_few_socket_writes) {
  constexpr std::size_t kBatch = 256 * 1024;  // a batch of 1000 events of ~250 bytes
  const std::size_t unprepared = writes_for_one_message(false, kBatch);
  const std::size_t prepared = writes_for_one_message(true, kBatch);
  // Beast's default 4 KB buffer: one write per 4 KB of the message.
  EXPECT_GE(unprepared, kBatch / 4096);
  EXPECT_GE(prepared, 1u);
  EXPECT_LE(prepared, kBatch / kClientWriteBuffer + 1);
}

TEST(amqp_streams_test, a_prepared_client_still_sends_the_message_whole) {
  JoinedWebSockets joined(true);
  ASSERT_TRUE(joined.upgrade());
  std::string message(3 * kClientWriteBuffer + 17, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 31 % 251);
  joined.client.write(asio::buffer(message));
  beast::flat_buffer received;
  joined.server.read(received);
  EXPECT_TRUE(joined.server.got_binary());
  EXPECT_EQ(beast::buffers_to_string(received.data()), message);
}

}  // namespace
}  // namespace connector
