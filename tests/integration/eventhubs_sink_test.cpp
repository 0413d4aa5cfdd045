// EventHubsSink against fake-eventhubs (plain and TLS, real CBS token checks, injected faults).
#include "eventhubs/eventhubs_sink.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/errors.hpp"
#include "support/eventhubs_sink_options.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/tcp_proxy.hpp"

namespace connector {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeEventHubsOptions;
using testing::FakeEventHubsServer;
using testing::RecordedEvent;
using testing::SilentListener;
using testing::TcpProxy;
using testing::sink_options_for;
using testing::sink_start_error;
using testing::thread_names;

Event make_event(const std::string& id, std::size_t body_size = 40) {
  Event event;
  event.entry_id = id;
  event.body = "{\"id\":\"" + id + "\",\"pad\":\"" + std::string(body_size, 'x') + "\"}";
  event.content_type = "application/json";
  event.body_is_json = true;
  event.properties = {{"redis-stream", "orders"}, {"redis-id", id}};
  return event;
}

Batch make_batch(int batch_no, std::size_t size) {
  Batch batch;
  for (std::size_t i = 0; i < size; ++i)
    batch.push_back(make_event(std::to_string(batch_no) + "-" + std::to_string(i)));
  return batch;
}

/// Collects completions from the sink's thread; counts them per (batch, index).
class Collector {
 public:
  CompletionCallback callback(int batch_no) {
    return [this, batch_no](std::vector<Completion> completions) {
      std::lock_guard lock(mutex_);
      for (auto& c : completions) {
        by_event_[{batch_no, c.index}].push_back(c);
        ++total_;
      }
      changed_.notify_all();
    };
  }
  bool wait_for_total(std::size_t n, milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return total_ >= n; });
  }
  std::size_t total() {
    std::lock_guard lock(mutex_);
    return total_;
  }
  std::map<std::pair<int, std::size_t>, std::vector<Completion>> by_event() {
    std::lock_guard lock(mutex_);
    return by_event_;
  }
  std::size_t count(Outcome outcome) {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [key, list] : by_event_) {
      for (const auto& c : list) n += c.outcome == outcome ? 1 : 0;
    }
    return n;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::pair<int, std::size_t>, std::vector<Completion>> by_event_;
  std::size_t total_ = 0;
};

/// Every (batch, index) of `batches` × `size` got exactly one completion, and it was Accepted.
void expect_each_accepted_once(Collector& collector, int batches, std::size_t size) {
  const auto by_event = collector.by_event();
  EXPECT_EQ(by_event.size(), static_cast<std::size_t>(batches) * size);
  for (int b = 0; b < batches; ++b) {
    for (std::size_t i = 0; i < size; ++i) {
      const auto it = by_event.find({b, i});
      ASSERT_NE(it, by_event.end()) << b << "-" << i;
      ASSERT_EQ(it->second.size(), 1u) << b << "-" << i;
      EXPECT_EQ(it->second[0].outcome, Outcome::Accepted) << b << "-" << i << " " << it->second[0].reason;
    }
  }
}

std::map<std::string, RecordedEvent> by_message_id(const std::vector<RecordedEvent>& events) {
  std::map<std::string, RecordedEvent> out;
  for (const auto& e : events) out.emplace(e.message_id.value_or(""), e);
  return out;
}

/// Sends `batch`, expects each event accepted once, stops the sink and returns what the server recorded.
std::map<std::string, RecordedEvent> send_and_stop(EventHubsSink& sink, FakeEventHubsServer& server,
                                                   const Batch& batch) {
  Collector collector;
  sink.send(batch, collector.callback(0));
  EXPECT_TRUE(collector.wait_for_total(batch.size(), seconds(10)));
  expect_each_accepted_once(collector, 1, batch.size());
  sink.stop(milliseconds(1000));
  return by_message_id(server.events());
}

TEST(eventhubs_sink_test, plain_sends_body_properties_and_partition_key) {
  FakeEventHubsServer server;
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  EXPECT_TRUE(sink.ready());
  EXPECT_EQ(thread_names().count("eventhubs"), 1u);  // the loop thread, as the header promises
  EXPECT_EQ(sink.max_event_bytes(), 1048576u);
  Batch batch = make_batch(0, 50);
  batch[7].partition_key = "customer-7";
  batch[8].partition_key = std::string(200, 'k');
  batch[9].body = std::string("\x00\x01\xFF raw", 7);
  batch[9].content_type = {};
  const auto recorded = send_and_stop(sink, server, batch);
  ASSERT_EQ(recorded.size(), 50u);
  const RecordedEvent& first = recorded.at("0-0");
  EXPECT_EQ(first.body, batch[0].body);
  EXPECT_EQ(first.body_kind, "data");
  EXPECT_EQ(first.content_type, "application/json");
  EXPECT_EQ(first.properties,
            (std::map<std::string, std::string>{{"redis-stream", "orders"}, {"redis-id", "0-0"}}));
  EXPECT_FALSE(first.partition_key.has_value());
  EXPECT_EQ(recorded.at("0-7").partition_key, std::optional<std::string>("customer-7"));
  EXPECT_EQ(recorded.at("0-8").partition_key->size(), 64u);  // SHA-256 hex of the 200-character key
  EXPECT_EQ(recorded.at("0-9").body, std::string("\x00\x01\xFF raw", 7));
  EXPECT_EQ(recorded.at("0-9").body_kind, "data");
  EXPECT_EQ(recorded.at("0-9").content_type, "");
}

TEST(eventhubs_sink_test, a_confirmed_batch_comes_back_for_the_next_one_to_be_encoded_into) {
  FakeEventHubsServer server;
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  EXPECT_TRUE(sink.spare_batch().empty());
  Collector collector;
  sink.send(make_batch(0, 20), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(20, seconds(10)));
  // The loop thread gives the batch back just after its callback.
  Batch spare;
  testing::wait_until([&] { return !(spare = sink.spare_batch()).empty(); }, seconds(5));
  ASSERT_EQ(spare.size(), 20u);
  EXPECT_EQ(spare[19].entry_id, "0-19");
  EXPECT_TRUE(sink.spare_batch().empty());  // handed out once
  sink.stop(milliseconds(1000));
}

TEST(eventhubs_sink_test, partition_id_sends_to_that_partition) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  options.partition_id = "2";
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  Batch batch = make_batch(0, 10);
  batch[0].partition_key = "ignored-with-a-partition-target";
  sink.send(batch, collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(10, seconds(10)));
  expect_each_accepted_once(collector, 1, 10);
  sink.stop(milliseconds(1000));
  const auto events = server.events();
  ASSERT_EQ(events.size(), 10u);
  for (const auto& e : events) {
    EXPECT_EQ(e.partition, "2");
    EXPECT_FALSE(e.partition_key.has_value());
  }
}

TEST(eventhubs_sink_test, tls_with_the_test_ca) {
  FakeEventHubsOptions fake;
  fake.tls = true;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 20), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(20, seconds(10)));
  expect_each_accepted_once(collector, 1, 20);
  sink.stop(milliseconds(1000));
  EXPECT_EQ(server.events().size(), 20u);
}

TEST(eventhubs_sink_test, tls_with_a_foreign_ca_fails_at_start) {
  FakeEventHubsOptions fake;
  fake.tls = true;
  FakeEventHubsServer server(fake);
  EventHubsSinkOptions options = sink_options_for(server);
  options.ca_file = server.certificates()->other_ca_cert.string();
  const std::string error = sink_start_error(options);
  EXPECT_NE(error.find("could not connect to Event Hubs at localhost:" + std::to_string(server.port())),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("the TLS handshake with localhost:" + std::to_string(server.port()) +
                       " failed: certificate verify failed"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("EVENT_HUBS_TLS_CA_FILE"), std::string::npos) << error;
}

TEST(eventhubs_sink_test, wrong_key_fails_at_start_without_leaking_it) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  options.connection.shared_access_key = "wrong-key-s3cr3t";
  const std::string error = sink_start_error(options);
  EXPECT_NE(error.find("unauthorized"), std::string::npos) << error;
  EXPECT_NE(error.find("SharedAccessKey"), std::string::npos) << error;
  EXPECT_EQ(error.find("wrong-key-s3cr3t"), std::string::npos) << error;
  EXPECT_EQ(error.find("SharedAccessSignature sr="), std::string::npos) << error;
}

TEST(eventhubs_sink_test, unknown_hub_fails_at_start_with_not_found) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  options.hub = "no-such-hub";
  const std::string error = sink_start_error(options);
  EXPECT_NE(error.find("Event Hub 'no-such-hub' was not found"), std::string::npos) << error;
}

// The service may close a connection while it is being set up (an upgrade, a gateway moving it): start()
// tries again, as the Redis connection does at startup, instead of failing the process on the first.
TEST(eventhubs_sink_test, a_connection_dropped_while_it_is_set_up_is_tried_again_at_start) {
  FakeEventHubsOptions fake;
  fake.drop_first_connections = 2;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 10), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(10, seconds(10)));
  expect_each_accepted_once(collector, 1, 10);
  sink.stop(milliseconds(1000));
  EXPECT_EQ(server.count_in_log("\"msg\":\"connection_opened\""), 3) << server.log();
  EXPECT_EQ(server.events().size(), 10u);
}

TEST(eventhubs_sink_test, a_service_that_keeps_dropping_the_connection_fails_start_after_three_attempts) {
  FakeEventHubsOptions fake;
  fake.drop_first_connections = 100;
  FakeEventHubsServer server(fake);
  const std::string error = sink_start_error(sink_options_for(server));
  EXPECT_NE(error.find("could not connect to Event Hubs at localhost:" + std::to_string(server.port())),
            std::string::npos)
      << error;
  EXPECT_EQ(server.count_in_log("\"msg\":\"connection_opened\""), 3) << server.log();
}

TEST(eventhubs_sink_test, refused_connection_fails_fast) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  server.stop();
  const auto begin = std::chrono::steady_clock::now();
  const std::string error = sink_start_error(options);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, seconds(5));
  EXPECT_NE(
      error.find("could not connect to Event Hubs at localhost:" + std::to_string(options.connection.port)),
      std::string::npos)
      << error;
}

TEST(eventhubs_sink_test, token_is_renewed_during_a_run) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  options.token_lifetime = seconds(3);
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  int batches = 0;
  const auto until = std::chrono::steady_clock::now() + seconds(8);
  while (std::chrono::steady_clock::now() < until) {
    sink.send(make_batch(batches, 10), collector.callback(batches));
    ++batches;
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_TRUE(collector.wait_for_total(static_cast<std::size_t>(batches) * 10, seconds(10)));
  expect_each_accepted_once(collector, batches, 10);
  sink.stop(milliseconds(1000));
  EXPECT_EQ(server.events().size(), static_cast<std::size_t>(batches) * 10);
  // The fake detaches a link whose token expired; renewals on the same connection prevent that.
  const std::string log = server.log();
  std::size_t put_tokens = 0;
  for (auto at = log.find("\"cbs_put_token\""); at != std::string::npos;
       at = log.find("\"cbs_put_token\"", at + 1)) {
    ++put_tokens;
  }
  EXPECT_GE(put_tokens, 3u) << log;  // the first, then one per ~2.4 s
  EXPECT_EQ(log.find("link_token_expired"), std::string::npos) << log;
  EXPECT_EQ(log.find("connection_opened", log.find("connection_opened") + 1), std::string::npos)
      << "renewal must not reconnect";
}

TEST(eventhubs_sink_test, server_busy_becomes_retry_with_a_delay) {
  FakeEventHubsOptions fake;
  fake.server_busy_every = 4;
  FakeEventHubsServer server(fake);
  auto options = sink_options_for(server);
  options.batching = false;  // the fake counts deliveries: every event its own
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 40), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(40, seconds(10)));
  sink.stop(milliseconds(1000));
  EXPECT_EQ(collector.count(Outcome::Retry), 10u);
  EXPECT_EQ(collector.count(Outcome::Accepted), 30u);
  for (const auto& [key, list] : collector.by_event()) {
    ASSERT_EQ(list.size(), 1u);
    if (list[0].outcome != Outcome::Retry) continue;
    EXPECT_GE(list[0].retry_after, milliseconds(4000));
    EXPECT_LE(list[0].retry_after, milliseconds(8000));
    EXPECT_NE(list[0].reason.find("com.microsoft:server-busy"), std::string::npos) << list[0].reason;
    EXPECT_EQ(list[0].cause, Cause::ServerBusy);
  }
  EXPECT_EQ(server.events().size(), 30u);
}

TEST(eventhubs_sink_test, rejected_events_become_reject) {
  FakeEventHubsOptions fake;
  fake.reject_every = 5;
  FakeEventHubsServer server(fake);
  auto options = sink_options_for(server);
  options.batching = false;  // the fake counts deliveries: every event its own
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 50), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(50, seconds(10)));
  sink.stop(milliseconds(1000));
  EXPECT_EQ(collector.count(Outcome::Reject), 10u);
  EXPECT_EQ(collector.count(Outcome::Accepted), 40u);
  for (const auto& [key, list] : collector.by_event()) {
    ASSERT_EQ(list.size(), 1u);
    if (list[0].outcome == Outcome::Reject) {
      EXPECT_NE(list[0].reason.find("amqp:decode-error"), std::string::npos) << list[0].reason;
      EXPECT_EQ(list[0].cause, Cause::Rejected);
    }
  }
  EXPECT_EQ(server.events().size(), 40u);
}

TEST(eventhubs_sink_test, oversize_event_is_rejected_up_front) {
  FakeEventHubsOptions fake;
  fake.max_message_size = 4096;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  EXPECT_EQ(sink.max_event_bytes(), 4096u);
  Collector collector;
  Batch batch = make_batch(0, 3);
  batch[1].body = std::string(5000, 'b');
  sink.send(batch, collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(3, seconds(10)));
  sink.stop(milliseconds(1000));
  const auto by_event = collector.by_event();
  EXPECT_EQ(by_event.at({0, 0})[0].outcome, Outcome::Accepted);
  EXPECT_EQ(by_event.at({0, 2})[0].outcome, Outcome::Accepted);
  const Completion& big = by_event.at({0, 1})[0];
  EXPECT_EQ(big.outcome, Outcome::Reject);
  EXPECT_NE(big.reason.find("exceeds the Event Hub's maximum message size of 4096 bytes"), std::string::npos)
      << big.reason;
  EXPECT_EQ(big.cause, Cause::TooLarge);
  const auto recorded = by_message_id(server.events());
  EXPECT_EQ(recorded.size(), 2u);
  EXPECT_EQ(recorded.count("0-1"), 0u);
}

/// Sends `batches` batches of `size`, at most `window` batches unconfirmed, like the pipeline does.
void send_windowed(EventHubsSink& sink, Collector& collector, int batches, std::size_t size, int window,
                   const std::function<void(int)>& between = {}) {
  for (int b = 0; b < batches; ++b) {
    while (collector.total() + static_cast<std::size_t>(window) * size <
           static_cast<std::size_t>(b + 1) * size) {
      collector.wait_for_total(static_cast<std::size_t>(b + 1 - window) * size, milliseconds(50));
    }
    sink.send(make_batch(b, size), collector.callback(b));
    if (between) between(b);
  }
}

/// Sends 30 windowed batches of 100 while connections drop, the server's way (`drop_after`) or the
/// test's (`drop_every_10_batches`): every event is accepted exactly once, resent as often as needed.
void expect_each_accepted_once_across_dropped_connections(int drop_after, bool drop_every_10_batches) {
  FakeEventHubsOptions fake;
  fake.drop_after = drop_after;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  send_windowed(sink, collector, 30, 100, 4, [&](int b) {
    if (drop_every_10_batches && b % 10 == 5) server.drop_connections();
  });
  ASSERT_TRUE(collector.wait_for_total(3000, seconds(30))) << collector.total();
  EXPECT_TRUE(testing::wait_until([&] { return sink.ready(); }, seconds(5)));
  // stop() waits for every answer still on the wire and reports nothing after it returns: a duplicate
  // completion (a resent event answered twice) is in by then.
  sink.stop(milliseconds(1000));
  expect_each_accepted_once(collector, 30, 100);
  const auto events = server.events();
  EXPECT_GE(events.size(), 3000u);
  EXPECT_EQ(by_message_id(events).size(), 3000u);  // every event arrived; duplicates are allowed
}

TEST(eventhubs_sink_test, dropped_connections_resend_until_each_event_is_accepted_once) {
  expect_each_accepted_once_across_dropped_connections(700, false);  // the server drops after every 700
  expect_each_accepted_once_across_dropped_connections(0, true);     // the test drops mid-stream
}

/// Entry ids of `events` per partition key, in the order the server accepted them (first arrival).
std::map<std::string, std::vector<std::string>> arrival_order_by_key(const std::vector<RecordedEvent>& events) {
  std::map<std::string, std::vector<std::string>> out;
  std::set<std::string> seen;
  for (const auto& e : events) {
    if (e.partition_key && seen.insert(*e.message_id).second) out[*e.partition_key].push_back(*e.message_id);
  }
  return out;
}

TEST(eventhubs_sink_test, several_links_keep_the_order_of_each_partition_key) {
  FakeEventHubsOptions fake;
  fake.delay_ms = 2;  // answers arrive while later events are on the wire on every link
  fake.credit = 30;
  FakeEventHubsServer server(fake);
  EventHubsSinkOptions options = sink_options_for(server);
  options.sender_links = 4;
  options.max_in_flight_events = 400;
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  std::map<std::string, std::vector<std::string>> sent_by_key;
  constexpr int kBatches = 20;
  constexpr std::size_t kSize = 100;
  for (int b = 0; b < kBatches; ++b) {
    while (collector.total() + 4 * kSize < (b + 1) * kSize) collector.wait_for_total((b - 3) * kSize, milliseconds(50));
    Batch batch = make_batch(b, kSize);
    for (std::size_t i = 0; i < kSize; ++i) {
      if (i % 10 == 9) continue;  // some events without a key: any link
      batch[i].partition_key = "key-" + std::to_string(i % 7);
      sent_by_key[batch[i].partition_key].push_back(batch[i].entry_id);
    }
    sink.send(std::move(batch), collector.callback(b));
  }
  ASSERT_TRUE(collector.wait_for_total(kBatches * kSize, seconds(30))) << collector.total();
  expect_each_accepted_once(collector, kBatches, kSize);
  sink.stop(milliseconds(1000));
  const auto events = server.events();
  std::set<std::string> links;
  for (const auto& e : events) links.insert(e.link);
  EXPECT_EQ(links.size(), 4u);  // every link carried events
  EXPECT_EQ(arrival_order_by_key(events), sent_by_key);
}

TEST(eventhubs_sink_test, a_link_detached_mid_batch_loses_nothing) {
  FakeEventHubsOptions fake;
  fake.detach_link_after = 450;  // mid-batch: batches are 100 events, spread over 4 links
  FakeEventHubsServer server(fake);
  EventHubsSinkOptions options = sink_options_for(server);
  options.sender_links = 4;
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  send_windowed(sink, collector, 20, 100, 4);
  ASSERT_TRUE(collector.wait_for_total(2000, seconds(30))) << collector.total();
  sink.stop(milliseconds(1000));  // a duplicate completion is in once stop() returns (see above)
  expect_each_accepted_once(collector, 20, 100);
  EXPECT_NE(server.log().find("\"fault\":\"detach_link\""), std::string::npos);
  EXPECT_EQ(by_message_id(server.events()).size(), 2000u);  // every event arrived; duplicates are allowed
}

// ---- Event Hubs batches (EVENT_HUBS_BATCHING, on by default) ----

/// 3 keys and keyless events, interleaved, in `batches` windowed batches of 100; returns the ids sent
/// per key.
std::map<std::string, std::vector<std::string>> send_keyed(EventHubsSink& sink, Collector& collector, int batches) {
  std::map<std::string, std::vector<std::string>> sent_by_key;
  for (int b = 0; b < batches; ++b) {
    while (collector.total() + 4 * 100 < static_cast<std::size_t>(b + 1) * 100) {
      collector.wait_for_total(static_cast<std::size_t>(b - 3) * 100, milliseconds(50));
    }
    Batch batch = make_batch(b, 100);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (i % 4 == 3) continue;  // keyless
      batch[i].partition_key = "key-" + std::to_string(i % 4);
      sent_by_key[batch[i].partition_key].push_back(batch[i].entry_id);
    }
    sink.send(std::move(batch), collector.callback(b));
  }
  return sent_by_key;
}

std::uint64_t total(const std::map<std::string, std::uint64_t>& counts) {
  std::uint64_t sum = 0;
  for (const auto& [partition, n] : counts) sum += n;
  return sum;
}

// Interleaved keys still make large batches (each key's events share deliveries), every event arrives
// once with its own id, properties and content type, each key lands in one partition in order, and the
// batch format is on the wire (fake-eventhubs' Proton prints each frame it reads with PN_TRACE_FRM).
TEST(eventhubs_sink_test, batches_carry_each_key_in_order_with_every_event_whole) {
  FakeEventHubsOptions fake;
  fake.env = {{"PN_TRACE_FRM", "1"}};
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  const auto sent_by_key = send_keyed(sink, collector, 10);
  ASSERT_TRUE(collector.wait_for_total(1000, seconds(20))) << collector.total();
  expect_each_accepted_once(collector, 10, 100);
  const auto counts = server.counts();
  sink.stop(milliseconds(1000));
  const auto events = server.events();
  ASSERT_EQ(events.size(), 1000u);
  EXPECT_EQ(total(counts.events_by_partition), 1000u);
  EXPECT_LE(total(counts.deliveries_by_partition), 100u) << "batches of 3 keys and keyless events";
  EXPECT_EQ(arrival_order_by_key(events), sent_by_key);
  std::map<std::string, std::set<std::string>> partitions_by_key;
  for (const auto& e : events) {
    EXPECT_EQ(e.properties.at("redis-id"), *e.message_id);
    EXPECT_EQ(e.properties.at("redis-stream"), "orders");
    EXPECT_EQ(e.content_type, "application/json");
    EXPECT_EQ(e.body, make_event(*e.message_id).body);
    if (e.partition_key) partitions_by_key[*e.partition_key].insert(e.partition);
  }
  for (const auto& [key, partitions] : partitions_by_key) EXPECT_EQ(partitions.size(), 1u) << key;
  const std::string log = server.log();
  EXPECT_NE(log.find("message-format=0x80013700"), std::string::npos) << "no transfer in the batch format";
}

TEST(eventhubs_sink_test, without_batching_each_event_is_its_own_delivery) {
  FakeEventHubsServer server;
  EventHubsSinkOptions options = sink_options_for(server);
  options.batching = false;
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  send_keyed(sink, collector, 3);
  ASSERT_TRUE(collector.wait_for_total(300, seconds(20))) << collector.total();
  const auto counts = server.counts();
  sink.stop(milliseconds(1000));
  EXPECT_EQ(total(counts.deliveries_by_partition), 300u);
}

// The service answers a batch with one outcome: the batch is split and each event sent alone, so only
// the bad one is refused (and goes to the dead-letter stream), never its neighbours.
TEST(eventhubs_sink_test, a_rejected_batch_refuses_only_the_bad_event) {
  FakeEventHubsOptions fake;
  fake.extra_args = {"--reject-body-containing", "POISON"};
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  Batch batch = make_batch(0, 200);
  batch[57].body = "{\"id\":\"0-57\",\"pad\":\"POISON\"}";
  sink.send(batch, collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(200, seconds(10))) << collector.total();
  sink.stop(milliseconds(1000));
  EXPECT_EQ(collector.count(Outcome::Reject), 1u);
  const auto by_event = collector.by_event();
  ASSERT_EQ(by_event.at({0, 57}).size(), 1u);
  EXPECT_EQ(by_event.at({0, 57})[0].outcome, Outcome::Reject);
  EXPECT_EQ(by_event.at({0, 57})[0].cause, Cause::Rejected);
  const auto recorded = by_message_id(server.events());
  EXPECT_EQ(recorded.size(), 199u);
  EXPECT_EQ(recorded.count("0-57"), 0u);
}

// A batch as large as the link allows: max-message-size bounds each delivery, and the events that do not
// fit go in the next one.
TEST(eventhubs_sink_test, batches_stay_within_the_link_max_message_size) {
  FakeEventHubsOptions fake;
  fake.max_message_size = 4096;  // the fake refuses anything larger
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  Batch batch = make_batch(0, 300);
  batch[10].body = std::string(3800, 'b');  // fits alone, never with a neighbour
  sink.send(batch, collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(300, seconds(10))) << collector.total();
  const auto counts = server.counts();
  sink.stop(milliseconds(1000));
  EXPECT_EQ(collector.count(Outcome::Accepted), 300u);
  EXPECT_GT(total(counts.deliveries_by_partition), 5u);
  EXPECT_LT(total(counts.deliveries_by_partition), 40u);
}

TEST(eventhubs_sink_test, not_ready_while_the_server_is_away_then_back) {
  FakeEventHubsServer server;
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  server.stop();
  EXPECT_TRUE(testing::wait_until([&] { return !sink.ready(); }, seconds(5)));
  Collector collector;
  sink.send(make_batch(0, 10), collector.callback(0));  // waits for the server
  server.restart();
  ASSERT_TRUE(collector.wait_for_total(10, seconds(15)));
  expect_each_accepted_once(collector, 1, 10);
  EXPECT_TRUE(sink.ready());
  sink.stop(milliseconds(1000));
}

TEST(eventhubs_sink_test, a_missing_disposition_makes_it_reconnect_and_send_again) {
  FakeEventHubsOptions fake;
  fake.delay_ms = 5000;
  FakeEventHubsServer server(fake);
  EventHubsSinkOptions options = sink_options_for(server);
  options.operation_timeout = milliseconds(700);
  EventHubsSink sink(options);
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 5), collector.callback(0));
  auto connections = [&] {
    const std::string log = server.log();
    std::size_t n = 0;
    for (auto at = log.find("\"connection_opened\""); at != std::string::npos;
         at = log.find("\"connection_opened\"", at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_TRUE(testing::wait_until([&] { return connections() >= 3; }, seconds(6))) << server.log();
  sink.stop(milliseconds(0));
  EXPECT_EQ(collector.total(), 0u);  // nothing was confirmed, so nothing may be reported
}

/// The sink's options for reaching `server` through `proxy`.
EventHubsSinkOptions options_via(const TcpProxy& proxy, const FakeEventHubsServer& server) {
  EventHubsSinkOptions options = sink_options_for(server);
  options.connection.port = proxy.port();
  options.connection.endpoint = "sb://localhost:" + std::to_string(proxy.port()) + "/";
  return options;
}

/// Connects through a proxy, confirms one batch, makes the flow vanish (no FIN, no RST) and sends a
/// second batch into it: every event of it must still be accepted once, over a new connection.
void expect_resent_after_the_flow_vanished(EventHubsSinkOptions options, FakeEventHubsServer& server,
                                           TcpProxy& proxy) {
  EventHubsSink sink(std::move(options));
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 10), collector.callback(0));
  ASSERT_TRUE(collector.wait_for_total(10, seconds(10)));
  proxy.freeze();
  sink.send(make_batch(1, 10), collector.callback(1));
  // Today's detection is bounded by the timeouts set here (1 s) plus the reconnect back-off (≤ 0.5 s);
  // before, it was the 60 s idle timeout plus a 60 s "configuration error" back-off.
  ASSERT_TRUE(collector.wait_for_total(20, seconds(30))) << collector.total() << "\n" << server.log();
  expect_each_accepted_once(collector, 2, 10);
  EXPECT_GE(proxy.connections(), 2);
  sink.stop(milliseconds(1000));
  EXPECT_EQ(by_message_id(server.events()).size(), 20u);
}

TEST(eventhubs_sink_test, a_vanished_flow_is_noticed_by_the_idle_timeout_and_events_are_resent) {
  FakeEventHubsServer server;
  TcpProxy proxy(server.port());
  EventHubsSinkOptions options = options_via(proxy, server);
  options.idle_timeout = milliseconds(1000);
  options.operation_timeout = seconds(60);  // out of the way: the idle timeout must do it
  options.max_retry_delay = seconds(60);    // the production cap: a local timeout must not jump to it
  expect_resent_after_the_flow_vanished(options, server, proxy);
}

TEST(eventhubs_sink_test, a_vanished_flow_is_noticed_by_the_disposition_timeout_and_events_are_resent) {
  FakeEventHubsServer server;
  TcpProxy proxy(server.port());
  EventHubsSinkOptions options = options_via(proxy, server);
  options.operation_timeout = milliseconds(1000);  // the idle timeout keeps its 60 s
  expect_resent_after_the_flow_vanished(options, server, proxy);
}

TEST(eventhubs_sink_test, stop_during_a_silent_outage_returns_within_the_grace_period) {
  FakeEventHubsServer server;
  TcpProxy proxy(server.port());
  EventHubsSink sink(options_via(proxy, server));
  sink.start();
  Collector collector;
  proxy.freeze();
  sink.send(make_batch(0, 10), collector.callback(0));  // on the wire, never answered
  const milliseconds grace(500);
  // Bound: the grace, the sink's close slack and tick (0.3 s), and generous room for a loaded machine.
  // Before, a polite close waited a full second more for a peer that could not answer.
  const milliseconds bound = grace + milliseconds(700);
  const auto begin = std::chrono::steady_clock::now();
  sink.stop(grace);
  EXPECT_LT(std::chrono::steady_clock::now() - begin, bound);
  EXPECT_EQ(collector.total(), 0u);  // unconfirmed: left pending in Redis
}

TEST(eventhubs_sink_test, a_port_that_never_answers_fails_start_naming_the_endpoint) {
  FakeEventHubsServer server;  // only for the credentials; the sink never reaches it
  SilentListener silent;
  EventHubsSinkOptions options = sink_options_for(server);
  options.connection.port = silent.port();
  options.connect_timeout = milliseconds(1000);
  options.operation_timeout = seconds(60);
  const auto begin = std::chrono::steady_clock::now();
  const std::string error = sink_start_error(options);
  // Generous, yet far below the 60 s (idle or operation timeout) it took before.
  EXPECT_LT(std::chrono::steady_clock::now() - begin, seconds(30));
  EXPECT_NE(error.find("localhost:" + std::to_string(silent.port())), std::string::npos) << error;
  EXPECT_NE(error.find("no AMQP open"), std::string::npos) << error;
}

TEST(eventhubs_sink_test, stop_from_another_thread_ends_a_hanging_start) {
  FakeEventHubsServer server;  // only for the credentials
  SilentListener silent;
  EventHubsSinkOptions options = sink_options_for(server);
  options.connection.port = silent.port();
  options.connect_timeout = seconds(60);  // start() alone would hang this long
  EventHubsSink sink(options);
  std::promise<std::string> outcome;
  std::thread starter([&] {
    try {
      sink.start();
      outcome.set_value("started");
    } catch (const EventHubsError& e) {
      outcome.set_value(e.what());
    }
  });
  // A stop() that comes before start() began does nothing, so keep asking until start() gave up.
  auto result = outcome.get_future();
  const auto deadline = std::chrono::steady_clock::now() + seconds(30);
  while (result.wait_for(milliseconds(50)) != std::future_status::ready &&
         std::chrono::steady_clock::now() < deadline) {
    sink.stop(milliseconds(0));
  }
  EXPECT_EQ(result.wait_for(seconds(0)), std::future_status::ready) << "start() ignored stop()";
  starter.join();  // on failure: once start() gives up by itself
  EXPECT_NE(result.get().find("stopped"), std::string::npos);
}

TEST(eventhubs_sink_test, non_utf8_property_values_and_partition_keys_arrive_losslessly) {
  // fake-eventhubs refuses AMQP strings that are not UTF-8 (amqp:decode-error), as a strict peer would.
  FakeEventHubsServer server;
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  const std::string raw("caf\xE9 \xFF\x00!", 8);  // Latin-1 é, a stray 0xFF and a NUL
  Batch batch = make_batch(0, 3);
  batch[0].properties.emplace_back("note", raw);
  batch[0].properties.emplace_back("plain", "café");
  batch[1].partition_key = raw;
  batch[2].partition_key = "caf\xC3\xA9";  // valid UTF-8: kept as it is
  const auto recorded = send_and_stop(sink, server, batch);
  ASSERT_EQ(recorded.size(), 3u);
  const RecordedEvent& with_property = recorded.at("0-0");
  EXPECT_EQ(with_property.properties.at("note"), raw);  // the same bytes, as AMQP binary
  EXPECT_EQ(with_property.binary_properties, (std::set<std::string>{"note"}));
  EXPECT_EQ(with_property.properties.at("plain"), "café");  // valid UTF-8 stays a string
  // Same bytes → same hash → same partition; the original bytes travel in the body or a property.
  // printf 'caf\351 \377\000!' | sha256sum
  EXPECT_EQ(recorded.at("0-1").partition_key,
            std::optional<std::string>("4b5bf712b7b3aa7ae03231475abed1b554b1f5d7a5e5d4c35edd635c9ad652c0"));
  EXPECT_EQ(recorded.at("0-2").partition_key, std::optional<std::string>("caf\xC3\xA9"));
}

TEST(eventhubs_sink_test, stop_reports_nothing_after_it_returns) {
  FakeEventHubsOptions fake;
  fake.delay_ms = 1500;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 20), collector.callback(0));
  // On the wire, their dispositions held back by the server.
  ASSERT_TRUE(testing::wait_until([&] { return server.counts().received == 20; }, seconds(10))) << server.log();
  sink.stop(milliseconds(200));
  const std::size_t at_stop = collector.total();
  EXPECT_EQ(at_stop, 0u);
  // Once the server has seen the connection go, none of its held-back answers can reach the sink.
  EXPECT_TRUE(testing::wait_until([&] { return server.count_in_log("\"msg\":\"connection_closed\"") == 1; },
                                  seconds(10)))
      << server.log();
  EXPECT_EQ(collector.total(), at_stop);
  EXPECT_FALSE(sink.ready());
}

TEST(eventhubs_sink_test, stop_waits_for_in_flight_dispositions_within_grace) {
  FakeEventHubsOptions fake;
  fake.delay_ms = 300;
  FakeEventHubsServer server(fake);
  EventHubsSink sink(sink_options_for(server));
  sink.start();
  Collector collector;
  sink.send(make_batch(0, 20), collector.callback(0));
  ASSERT_TRUE(testing::wait_until([&] { return server.counts().received == 20; }, seconds(10))) << server.log();
  sink.stop(milliseconds(5000));
  EXPECT_EQ(collector.total(), 20u);
  expect_each_accepted_once(collector, 1, 20);
}

}  // namespace
}  // namespace connector
