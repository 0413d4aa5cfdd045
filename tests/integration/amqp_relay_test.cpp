// AmqpRelay carrying AMQP's own byte stream (no WebSocket) to a real fake-eventhubs, over TCP and TLS:
// the sink's events through it, and what problem() says when the way out or the bytes are wrong.
#include "eventhubs/amqp_relay.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <string>

#include "eventhubs/eventhubs_sink.hpp"
#include "support/child_process.hpp"
#include "support/eventhubs_sink_options.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using testing::FakeEventHubsOptions;
using testing::FakeEventHubsServer;
using testing::sink_options_for;
using testing::wait_until;

/// The same sink pointed at the relay's loopback port, where it speaks plain AMQP.
EventHubsSinkOptions through(const AmqpRelay& relay, EventHubsSinkOptions options) {
  options.connection.host = "127.0.0.1";
  options.connection.port = relay.port();
  options.connection.endpoint = "sb://127.0.0.1:" + std::to_string(relay.port()) + "/";
  options.connection.use_development_emulator = true;
  options.ca_file.clear();
  options.batching = false;  // a batching sink brings its own relay: this one under test is the only one
  return options;
}

Batch events(int count) {
  Batch batch;
  for (int i = 0; i < count; ++i) {
    Event event;
    event.entry_id = "1-" + std::to_string(i);
    event.body = "{\"n\":" + std::to_string(i) + "}";
    event.content_type = "application/json";
    event.body_is_json = true;
    batch.push_back(std::move(event));
  }
  return batch;
}

std::uint64_t accepted(FakeEventHubsServer& hub) {
  std::uint64_t n = 0;
  for (const auto& [partition, count] : hub.counts().events_by_partition) n += count;
  return n;
}

/// A client of the relay's loopback port that writes `bytes` and waits until the relay hangs up (having
/// read them all: it would reset the connection otherwise).
void send_and_wait_for_the_close(const AmqpRelay& relay, const std::string& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  socket.connect({boost::asio::ip::address_v4::loopback(), relay.port()});
  if (!bytes.empty()) boost::asio::write(socket, boost::asio::buffer(bytes));
  std::string answer;
  boost::system::error_code ec;
  boost::asio::read(socket, boost::asio::dynamic_buffer(answer), ec);
  EXPECT_EQ(ec, boost::asio::error::eof) << ec.message();
}

/// With TLS (amqps://) or without (amqp://).
class amqp_relay_stream_test : public ::testing::TestWithParam<bool> {};

TEST_P(amqp_relay_stream_test, the_sinks_events_reach_the_hub_through_the_relay) {
  const bool tls = GetParam();
  FakeEventHubsOptions hub_options;
  hub_options.tls = tls;
  FakeEventHubsServer hub(hub_options);
  const auto relay_options_for_hub = relay_options(sink_options_for(hub), true);
  ASSERT_TRUE(relay_options_for_hub.has_value());
  EXPECT_FALSE(relay_options_for_hub->websocket);
  EXPECT_TRUE(relay_options_for_hub->stamp_batches);
  AmqpRelay relay(*relay_options_for_hub);
  relay.start();
  EXPECT_EQ(relay.describe(),
            (tls ? "amqps://localhost:" : "amqp://localhost:") + std::to_string(hub.port()) + " (relayed)");

  EventHubsSink sink(through(relay, sink_options_for(hub)));
  sink.start();
  std::atomic<int> done{0};
  std::atomic<int> refused{0};
  sink.send(events(200), [&](std::vector<Completion> completions) {
    for (const Completion& completion : completions) {
      if (completion.outcome != Outcome::Accepted) ++refused;
      ++done;
    }
  });
  EXPECT_TRUE(wait_until([&] { return done.load() == 200; }, 20s)) << hub.log();
  // While the bytes flow: once the sink has stopped, the hub may hang up first, and that is news then.
  EXPECT_EQ(relay.problem(), std::nullopt);
  sink.stop(1000ms);
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(accepted(hub), 200u);
}

INSTANTIATE_TEST_SUITE_P(tcp_and_tls, amqp_relay_stream_test, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "tcp"; });

TEST(amqp_relay_test, an_untrusted_certificate_is_the_relays_problem_naming_the_host) {
  FakeEventHubsOptions hub_options;
  hub_options.tls = true;
  FakeEventHubsServer hub(hub_options);
  auto options = *relay_options(sink_options_for(hub), true);
  options.ca_file = hub.certificates()->other_ca_cert.string();
  AmqpRelay relay(options);
  relay.start();
  send_and_wait_for_the_close(relay, "");
  const std::string expected =
      "the TLS handshake with localhost:" + std::to_string(hub.port()) + " failed: certificate verify failed";
  EXPECT_NE(relay.problem().value_or("").find(expected), std::string::npos) << relay.problem().value_or("");
}

TEST(amqp_relay_test, bytes_the_stamp_cannot_read_end_the_connection_and_say_why) {
  FakeEventHubsServer hub;
  AmqpRelay relay(*relay_options(sink_options_for(hub), true));
  relay.start();
  // A protocol header, then a frame that says it is 3 bytes long.
  send_and_wait_for_the_close(
      relay, std::string("AMQP\x00\x01\x00\x00", 8) + std::string("\x00\x00\x00\x03\x02\x00\x00\x00", 8));
  EXPECT_TRUE(wait_until([&] { return relay.problem().has_value(); }, 5s));
  EXPECT_EQ(
      relay.problem().value_or(""),
      "the relay dropped the connection to localhost:" + std::to_string(hub.port()) +
          ": the AMQP client's bytes are not AMQP as the batch stamp reads it (AMQP framing: a frame of 3 "
          "bytes)");
}

}  // namespace
}  // namespace connector
