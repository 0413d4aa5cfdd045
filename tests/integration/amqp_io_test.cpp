// AmqpIoLoop under the sink, carrying AMQP's own byte stream (no WebSocket) to a real fake-eventhubs
// over TCP and TLS with and without batches: Proton's bytes go straight to the service from the sink's
// own thread; and what the sink says when the service's bytes are wrong (an untrusted certificate:
// eventhubs_sink_test).
#include "eventhubs/amqp_io.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <tuple>

#include "common/errors.hpp"
#include "eventhubs/eventhubs_sink.hpp"
#include "support/child_process.hpp"
#include "support/eventhubs_sink_options.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/loopback_listener.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using testing::FakeEventHubsOptions;
using testing::FakeEventHubsServer;
using testing::LoopbackListener;
using testing::sink_options_for;
using testing::sink_start_error;
using testing::thread_names;
using testing::wait_until;

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

/// TLS (amqps://) or not (amqp://), batches on or off.
class amqp_io_stream_test : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(amqp_io_stream_test, the_sinks_events_reach_the_hub_from_the_sinks_own_thread) {
  const auto [tls, batching] = GetParam();
  FakeEventHubsOptions hub_options;
  hub_options.tls = tls;
  FakeEventHubsServer hub(hub_options);
  EventHubsSinkOptions options = sink_options_for(hub);
  options.batching = batching;
  const AmqpPathOptions path = amqp_path_options(options);
  EXPECT_FALSE(path.websocket);
  EXPECT_EQ(path.tls, tls);
  EXPECT_EQ(path.stamp_batches, batching);
  EXPECT_EQ(AmqpIoLoop(path).describe(),
            (tls ? "amqps://localhost:" : "amqp://localhost:") + std::to_string(hub.port()));

  EventHubsSink sink(options);
  sink.start();
  // One thread does Proton's AMQP and the sockets: no relay thread or loopback hop in between.
  auto threads = thread_names();
  EXPECT_EQ(threads.count("eventhubs"), 1u);
  EXPECT_EQ(threads.count("eventhubs-relay"), 0u);
  EXPECT_EQ(threads.count("eventhubs-ws"), 0u);
  std::atomic<int> done{0};
  std::atomic<int> refused{0};
  sink.send(events(200), [&](std::vector<Completion> completions) {
    for (const Completion& completion : completions) {
      if (completion.outcome != Outcome::Accepted) ++refused;
      ++done;
    }
  });
  EXPECT_TRUE(wait_until([&] { return done.load() == 200; }, 20s)) << hub.log();
  sink.stop(1000ms);
  EXPECT_EQ(refused.load(), 0);
  EXPECT_EQ(accepted(hub), 200u);
  std::uint64_t deliveries = 0;
  for (const auto& [partition, count] : hub.counts().deliveries_by_partition) deliveries += count;
  if (batching) {
    EXPECT_LT(deliveries, 200u) << "batches on, yet one delivery per event";
  } else {
    EXPECT_EQ(deliveries, 200u);
  }
}

INSTANTIATE_TEST_SUITE_P(tcp_and_tls, amqp_io_stream_test,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()), [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "tls" : "tcp") +
                                  (std::get<1>(info.param) ? "_batches" : "_single");
                         });

TEST(amqp_io_test, service_bytes_the_stamp_cannot_read_end_the_connection_and_say_why) {
  LoopbackListener listener;
  // A peer that answers the protocol header with its own and then a frame that says it is 3 bytes long.
  std::thread peer([&] {
    for (;;) {
      const int fd = listener.accept();
      if (fd < 0) return;
      char header[8];
      if (::recv(fd, header, sizeof header, MSG_WAITALL) == sizeof header) {
        const std::string answer =
            std::string("AMQP\x03\x01\x00\x00", 8) + std::string("\x00\x00\x00\x03\x02\x01\x00\x00", 8);
        (void)::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        char rest[256];
        while (::recv(fd, rest, sizeof rest, 0) > 0) {
        }
      }
      ::close(fd);
    }
  });
  EventHubsSinkOptions options;
  options.connection.host = "127.0.0.1";
  options.connection.port = listener.port();
  options.connection.endpoint = "sb://127.0.0.1:" + std::to_string(listener.port()) + "/";
  options.connection.use_development_emulator = true;
  options.connection.shared_access_key_name = "name";
  options.connection.shared_access_key = "key";
  options.hub = "hub";
  options.max_in_flight_events = 10;
  options.connect_timeout = 5000ms;
  options.batching = true;
  const std::string error = sink_start_error(options);
  listener.shutdown();
  peer.join();
  EXPECT_NE(
      error.find("dropped the connection to 127.0.0.1:" + std::to_string(listener.port()) +
                 ": the service's bytes are not AMQP as the batch stamp reads it (AMQP framing: a frame of "
                 "3 bytes)"),
      std::string::npos)
      << error;
}

}  // namespace
}  // namespace connector
