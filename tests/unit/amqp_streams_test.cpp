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

/// Upgrades `client` to a WebSocket with `server` answering, both in memory; true when both ends agree.
bool upgrade(asio::io_context& io, CountedWebSocket& client, CountedWebSocket& server) {
  ErrorCode accepted = asio::error::would_block;
  ErrorCode handshaken = asio::error::would_block;
  server.async_accept([&](ErrorCode ec) { accepted = ec; });
  client.async_handshake("eventhubs.test", std::string(kAmqpWebSocketPath), [&](ErrorCode ec) { handshaken = ec; });
  io.run();
  io.restart();
  return !accepted && !handshaken;
}

/// How many writes the client's message of `size` bytes takes to reach the socket under it.
std::size_t writes_for_one_message(bool prepared, std::size_t size) {
  asio::io_context io;
  CountedWebSocket client(io);
  CountedWebSocket server(io);
  client.next_layer().connect(server.next_layer());
  if (prepared) prepare_client(client);
  if (!upgrade(io, client, server)) return 0;
  carry_amqp(client);
  const std::size_t before = client.next_layer().nwrite();
  const std::string message(size, 'a');
  client.write(asio::buffer(message));
  return client.next_layer().nwrite() - before;
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
  asio::io_context io;
  CountedWebSocket client(io);
  CountedWebSocket server(io);
  client.next_layer().connect(server.next_layer());
  prepare_client(client);
  ASSERT_TRUE(upgrade(io, client, server));
  carry_amqp(client);
  carry_amqp(server);
  std::string message(3 * kClientWriteBuffer + 17, '\0');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>(i * 31 % 251);
  client.write(asio::buffer(message));
  beast::flat_buffer received;
  server.read(received);
  EXPECT_TRUE(server.got_binary());
  EXPECT_EQ(beast::buffers_to_string(received.data()), message);
}

}  // namespace
}  // namespace connector
