// fake-eventhubs against a small Proton client written here: CBS, sender links, faults, TLS, $management.
#include <gtest/gtest.h>
#include <proton/condition.h>
#include <proton/delivery.h>
#include <proton/disposition.h>
#include <proton/link.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/codec/map.hpp>
#include <proton/codec/vector.hpp>
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <proton/container.hpp>
#include <proton/delivery.hpp>
#include <proton/error_condition.hpp>
#include <proton/message.hpp>
#include <proton/message_id.hpp>
#include <proton/messaging_handler.hpp>
#include <proton/receiver.hpp>
#include <proton/receiver_options.hpp>
#include <proton/sender.hpp>
#include <proton/sender_options.hpp>
#include <proton/ssl.hpp>
#include <proton/target_options.hpp>
#include <proton/timestamp.hpp>
#include <proton/tracker.hpp>
#include <proton/transport.hpp>
#include <proton/work_queue.hpp>
#include <string>
#include <thread>
#include <vector>

#include "eventhubs/sas_token.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector::testing {
namespace {

using namespace std::chrono_literals;

// Proton C++ 0.37 exposes neither a disposition's error condition nor the peer's max-message-size;
// a class derived from the handle may read the wrapped C pointer through its protected accessor.
template <typename Handle>
struct CHandle : Handle {
  static auto get(const Handle& handle) {
    constexpr auto accessor = &CHandle::pn_object;
    return (handle.*accessor)();
  }
};

std::string remote_condition(const proton::tracker& tracker) {
  pn_delivery_t* raw = CHandle<proton::tracker>::get(tracker);
  const char* name = pn_condition_get_name(pn_disposition_condition(pn_delivery_remote(raw)));
  return name != nullptr ? name : "";
}

std::uint64_t remote_max_message_size(const proton::sender& sender) {
  return pn_link_remote_max_message_size(CHandle<proton::link>::get(sender));
}

/// What one client session should do.
struct Script {
  std::uint16_t port = 0;
  const TlsCertificates* tls = nullptr;
  std::string audience;  // put-token when not empty
  std::string token;
  std::string target;  // event sender link when not empty
  std::vector<proton::message> messages;
  std::vector<std::string> encoded;  // sent as they are after `messages` (e.g. batch envelopes)
  std::optional<std::map<std::string, std::string>> management;  // application properties of a request
  bool wait_for_link_error = false;  // keep the connection until the event link is detached
  std::chrono::milliseconds timeout = 10s;
};

/// What the client saw.
struct Result {
  std::optional<int> cbs_status;
  std::string cbs_description;
  bool link_opened = false;
  std::string link_error;  // condition of the event link's detach
  std::uint64_t max_message_size = 0;
  std::vector<std::string> outcomes;  // "accepted" or the rejection's condition, per message
  std::optional<int> management_status;
  proton::value management_body;
  std::string transport_error;
  bool timed_out = false;
};

class ScriptedClient : public proton::messaging_handler {
 public:
  explicit ScriptedClient(Script script) : script_(std::move(script)) {}

  Result run() {
    proton::container container(*this);
    container.run();
    return result_;
  }

 private:
  void on_container_start(proton::container& container) override {
    proton::connection_options options;
    options.sasl_allowed_mechs("ANONYMOUS").virtual_host("localhost").idle_timeout(proton::duration(60000));
    if (script_.tls != nullptr) {
      options.ssl_client_options(
          proton::ssl_client_options(script_.tls->ca_cert.string(), proton::ssl::VERIFY_PEER_NAME));
    }
    container.connect("localhost:" + std::to_string(script_.port), options);
    deadline_ = std::chrono::steady_clock::now() + script_.timeout;
    watch(container);
  }

  // A pending timer keeps container.run() from returning, so the watchdog re-arms itself in short
  // steps and stops re-arming once the script is finished.
  void watch(proton::container& container) {
    container.schedule(proton::duration(50), [this, &container] {
      if (finished_) return;
      if (std::chrono::steady_clock::now() >= deadline_) {
        result_.timed_out = true;
        container.stop();
        return;
      }
      watch(container);
    });
  }

  void on_connection_open(proton::connection& connection) override {
    connection_ = connection;
    if (!script_.token.empty()) {
      cbs_receiver_ = connection.open_receiver(
          "$cbs", proton::receiver_options().target(proton::target_options().address("cbs-reply")));
      cbs_sender_ = connection.open_sender("$cbs");
    } else {
      after_cbs();
    }
  }

  void after_cbs() {
    if (script_.management) {
      management_receiver_ = connection_.open_receiver(
          "$management", proton::receiver_options().target(proton::target_options().address("mgmt-reply")));
      management_sender_ = connection_.open_sender("$management");
    }
    if (!script_.target.empty()) event_sender_ = connection_.open_sender(script_.target);
    if (script_.target.empty() && !script_.management) finish();
  }

  void on_sendable(proton::sender& sender) override {
    if (sender == cbs_sender_ && !token_sent_) {
      token_sent_ = true;
      proton::message request;
      request.id("put-token-1");
      request.reply_to("cbs-reply");
      request.to("$cbs");
      request.properties().put("operation", "put-token");
      request.properties().put("type", "servicebus.windows.net:sastoken");
      request.properties().put("name", script_.audience);
      request.body(script_.token);
      sender.send(request);
    } else if (sender == management_sender_ && !management_sent_) {
      management_sent_ = true;
      proton::message request;
      request.id("mgmt-1");
      request.reply_to("mgmt-reply");
      for (const auto& [name, value] : *script_.management) request.properties().put(name, value);
      sender.send(request);
    } else if (sender == event_sender_) {
      if (!result_.link_opened) {
        result_.link_opened = true;
        result_.max_message_size = remote_max_message_size(sender);
      }
      while (next_message_ < script_.messages.size() && sender.credit() > 0) {
        trackers_[sender.send(script_.messages[next_message_])] = next_message_;
        ++next_message_;
      }
      while (next_encoded_ < script_.encoded.size() && sender.credit() > 0) send_encoded(sender);
    }
  }

  void on_message(proton::delivery& delivery, proton::message& message) override {
    if (delivery.receiver() == cbs_receiver_) {
      result_.cbs_status = proton::get<std::int32_t>(message.properties().get("status-code"));
      result_.cbs_description = proton::get<std::string>(message.properties().get("status-description"));
      EXPECT_EQ(proton::get<std::string>(message.correlation_id()), "put-token-1");
      after_cbs();
    } else if (delivery.receiver() == management_receiver_) {
      result_.management_status = proton::get<std::int32_t>(message.properties().get("status-code"));
      result_.management_body = message.body();
      EXPECT_EQ(proton::get<std::string>(message.correlation_id()), "mgmt-1");
      if (script_.target.empty()) finish();
    }
  }

  // Proton C++ sends only messages it encodes itself; these bytes go out through the C API, tagged with
  // their index in `encoded`.
  void send_encoded(proton::sender& sender) {
    const std::string tag = kEncodedTag + std::to_string(next_encoded_);
    const std::string& bytes = script_.encoded[next_encoded_++];
    pn_link_t* link = CHandle<proton::link>::get(sender);
    pn_delivery(link, pn_dtag(tag.data(), tag.size()));
    pn_link_send(link, bytes.data(), bytes.size());
    pn_link_advance(link);
  }

  std::optional<std::size_t> outcome_index(const proton::tracker& tracker) const {
    if (const auto found = trackers_.find(tracker); found != trackers_.end()) return found->second;
    const proton::binary tag = tracker.tag();
    const std::string text(tag.begin(), tag.end());
    if (text.rfind(kEncodedTag, 0) != 0) return std::nullopt;
    return script_.messages.size() + std::stoul(text.substr(std::string(kEncodedTag).size()));
  }

  void record_outcome(const proton::tracker& tracker, std::string outcome) {
    const auto index = outcome_index(tracker);
    if (!index) return;
    if (result_.outcomes.size() <= *index) result_.outcomes.resize(*index + 1);
    result_.outcomes[*index] = std::move(outcome);
    ++settled_;
    if (settled_ == script_.messages.size() + script_.encoded.size() && !script_.wait_for_link_error) finish();
  }
  void on_tracker_accept(proton::tracker& tracker) override { record_outcome(tracker, "accepted"); }
  void on_tracker_reject(proton::tracker& tracker) override {
    record_outcome(tracker, remote_condition(tracker));
  }
  void on_tracker_release(proton::tracker& tracker) override { record_outcome(tracker, "released"); }

  void on_sender_error(proton::sender& sender) override {
    if (sender == event_sender_) {
      result_.link_error = sender.error().name();
      finish();
    }
  }
  void on_transport_error(proton::transport& transport) override {
    result_.transport_error = transport.error().name() + ": " + transport.error().description();
  }
  void on_transport_close(proton::transport&) override {
    finished_ = true;
    connection_.container().stop();
  }

  void finish() {
    if (finished_) return;
    finished_ = true;
    connection_.close();
  }

  Script script_;
  Result result_;
  proton::connection connection_;
  proton::sender cbs_sender_, management_sender_, event_sender_;
  proton::receiver cbs_receiver_, management_receiver_;
  bool token_sent_ = false;
  bool management_sent_ = false;
  bool finished_ = false;
  std::chrono::steady_clock::time_point deadline_;
  static constexpr const char* kEncodedTag = "encoded-";
  std::size_t next_message_ = 0;
  std::size_t next_encoded_ = 0;
  std::size_t settled_ = 0;
  std::map<proton::tracker, std::size_t> trackers_;
};

std::string token_for(const FakeEventHubsServer& server, const std::string& audience,
                      std::chrono::seconds lifetime = 3600s, std::optional<std::string> key = std::nullopt) {
  return make_sas_token(audience, server.options().key_name, key.value_or(server.options().key),
                        std::chrono::system_clock::now() + lifetime);
}

proton::message event(const std::string& body, std::optional<std::string> partition_key = std::nullopt) {
  proton::message message;
  message.body(proton::binary(body));
  message.inferred(true);
  message.content_type("application/json");
  message.properties().put("redis-id", "1-0");
  message.properties().put("redis-stream", "orders");
  if (partition_key)
    message.message_annotations().put(proton::annotation_key("x-opt-partition-key"), *partition_key);
  return message;
}

std::string encode(const proton::message& message) {
  std::vector<char> bytes;
  message.encode(bytes);
  return std::string(bytes.begin(), bytes.end());
}

/// What the Azure SDKs send for a batch: an envelope message whose body is one data section per event,
/// each holding that event's encoded message, and the batch's partition key on the envelope.
std::string batch_envelope_of(const std::vector<std::string>& sections,
                              std::optional<std::string> partition_key = std::nullopt) {
  proton::message envelope;
  envelope.inferred(true);
  envelope.body(proton::binary(sections.at(0)));
  if (partition_key)
    envelope.message_annotations().put(proton::annotation_key("x-opt-partition-key"), *partition_key);
  std::string out = encode(envelope);
  for (std::size_t i = 1; i < sections.size(); ++i) {
    const auto size = static_cast<std::uint32_t>(sections[i].size());
    out += std::string("\x00\x53\x75\xb0", 4);  // data section, vbin32
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(size >> shift));
    out += sections[i];
  }
  return out;
}

std::string batch_envelope(const std::vector<proton::message>& events,
                           std::optional<std::string> partition_key = std::nullopt) {
  std::vector<std::string> sections;
  for (const auto& event : events) sections.push_back(encode(event));
  return batch_envelope_of(sections, std::move(partition_key));
}

FakeEventHubsOptions with(const std::function<void(FakeEventHubsOptions&)>& change) {
  FakeEventHubsOptions options;
  change(options);
  return options;
}

Script sending(const FakeEventHubsServer& server, std::vector<proton::message> messages,
               std::string target = "") {
  Script script;
  script.port = server.port();
  script.audience = "sb://localhost/" + server.options().hub;
  script.token = token_for(server, script.audience);
  script.target = target.empty() ? server.options().hub : target;
  script.messages = std::move(messages);
  return script;
}

TEST(fake_eventhubs_test, put_token_then_send_records_events) {
  FakeEventHubsServer server;
  auto script = sending(server, {event(R"({"n":1})", "customer-7"), event(R"({"n":2})")});
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_EQ(result.cbs_status, 202);
  EXPECT_TRUE(result.link_opened);
  EXPECT_EQ(result.max_message_size, 1048576u);
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted", "accepted"}));

  const auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].body, R"({"n":1})");
  EXPECT_EQ(events[0].body_kind, "data");
  EXPECT_EQ(events[0].content_type, "application/json");
  EXPECT_EQ(events[0].partition_key, "customer-7");
  EXPECT_EQ(events[0].properties.at("redis-id"), "1-0");
  EXPECT_EQ(events[0].properties.at("redis-stream"), "orders");
  EXPECT_FALSE(events[1].partition_key.has_value());
  EXPECT_EQ(events[1].seq, 2u);
}

// Plain events are read from their bytes, other shapes through Proton's decoding: each records the same
// fields as before.
TEST(fake_eventhubs_test, plain_and_other_message_shapes_record_their_fields) {
  FakeEventHubsServer server;
  proton::message plain = event(std::string(300, 'x'), "key-1");  // 4-byte length forms
  plain.id("id-1");
  plain.properties().put("raw", proton::binary(std::string("\x01\xff", 2)));
  plain.properties().put("empty", "");
  proton::message numeric = event("n");
  numeric.id(std::uint64_t{42});
  numeric.properties().put("count", 7);
  proton::message value = event("v");
  value.inferred(false);
  value.body("text");
  proton::message bad_property = event("b");
  bad_property.properties().put("bad", std::string("\xff", 1));  // an AMQP string must be UTF-8
  const proton::message bad_key = event("k", std::string("\xff", 1));
  const Result result = ScriptedClient(sending(server, {plain, numeric, value, bad_property, bad_key})).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  ASSERT_EQ(result.outcomes, (std::vector<std::string>{"accepted", "accepted", "accepted", "amqp:decode-error",
                                                       "amqp:decode-error"}));
  const auto events = server.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].body, std::string(300, 'x'));
  EXPECT_EQ(events[0].body_kind, "data");
  EXPECT_EQ(events[0].partition_key, "key-1");
  EXPECT_EQ(events[0].message_id, "id-1");
  EXPECT_EQ(events[0].content_type, "application/json");
  EXPECT_EQ(events[0].properties.at("raw"), std::string("\x01\xff", 2));
  EXPECT_EQ(events[0].binary_properties, (std::set<std::string>{"raw"}));
  EXPECT_EQ(events[0].properties.at("empty"), "");
  EXPECT_EQ(events[0].properties.at("redis-stream"), "orders");
  EXPECT_EQ(events[1].message_id, "42");
  EXPECT_EQ(events[1].properties.at("count"), "7");
  EXPECT_EQ(events[1].body, "n");
  EXPECT_EQ(events[2].body_kind, "value");
  EXPECT_EQ(events[2].body, "text");
}

proton::message numbered_event(int n) {
  proton::message message = event(R"({"n":)" + std::to_string(n) + "}");
  message.id("id-" + std::to_string(n));
  message.properties().put("redis-id", std::to_string(n) + "-0");
  return message;
}

TEST(fake_eventhubs_test, batch_envelope_events_are_recorded_one_by_one_and_counted_per_partition) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("single", "key-b")});
  script.encoded = {batch_envelope({numbered_event(1), numbered_event(2), numbered_event(3)}, "key-a"),
                    batch_envelope({numbered_event(4), numbered_event(5)}, "key-b")};
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  ASSERT_EQ(result.outcomes, (std::vector<std::string>(3, "accepted")));

  const auto events = server.events();
  ASSERT_EQ(events.size(), 6u);
  for (int n = 1; n <= 5; ++n) {
    const RecordedEvent& e = events[static_cast<std::size_t>(n)];
    EXPECT_EQ(e.message_id, "id-" + std::to_string(n));
    EXPECT_EQ(e.body, R"({"n":)" + std::to_string(n) + "}");
    EXPECT_EQ(e.properties.at("redis-id"), std::to_string(n) + "-0");  // each event's own properties
    EXPECT_EQ(e.content_type, "application/json");
    EXPECT_EQ(e.partition_key, n <= 3 ? "key-a" : "key-b");  // the envelope's key
  }
  EXPECT_EQ(events[4].partition, events[0].partition);  // the same key, batched or not

  const auto counts = server.counts();
  EXPECT_EQ(counts.received, 6u);  // events, not deliveries
  std::map<std::string, std::uint64_t> expected_events, expected_deliveries;
  ++expected_deliveries[events[0].partition];  // the single event
  expected_events[events[0].partition] += 1;
  ++expected_deliveries[events[1].partition];  // the first batch
  expected_events[events[1].partition] += 3;
  ++expected_deliveries[events[4].partition];  // the second batch
  expected_events[events[4].partition] += 2;
  for (const auto& [partition, n] : counts.events_by_partition) {
    EXPECT_EQ(n, expected_events[partition]) << partition;
    EXPECT_EQ(counts.deliveries_by_partition.at(partition), expected_deliveries[partition]) << partition;
  }
  EXPECT_EQ(counts.events_by_partition.size(), 4u);
}

TEST(fake_eventhubs_test, one_bad_event_fails_its_whole_batch) {
  FakeEventHubsServer server;
  proton::message bad = numbered_event(2);
  bad.properties().put("bad", std::string("\xff", 1));  // an AMQP string must be UTF-8
  auto script = sending(server, {});
  script.encoded = {batch_envelope({numbered_event(1), bad, numbered_event(3)}, "key-a"),
                    batch_envelope({numbered_event(4)}),
                    batch_envelope_of({encode(numbered_event(5)), "not an AMQP message"})};
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"amqp:decode-error", "accepted", "amqp:decode-error"}));
  const auto events = server.events();
  ASSERT_EQ(events.size(), 1u);  // none of the refused batch's neighbours
  EXPECT_EQ(events[0].message_id, "id-4");
  EXPECT_NE(server.log().find("event 2 of the batch"), std::string::npos) << server.log();
  EXPECT_EQ(server.counts().received, 3u);  // a batch that cannot be read counts once
}

TEST(fake_eventhubs_test, partition_target_and_partition_key_choose_the_partition) {
  FakeEventHubsServer server;
  auto to_partition = sending(server, {event("a"), event("b")}, server.options().hub + "/Partitions/2");
  ASSERT_EQ(ScriptedClient(to_partition).run().outcomes, (std::vector<std::string>{"accepted", "accepted"}));
  auto keyed = sending(server, {event("c", "same-key"), event("d", "same-key"), event("e", "same-key")});
  ASSERT_EQ(ScriptedClient(keyed).run().outcomes.size(), 3u);

  const auto events = server.events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].partition, "2");
  EXPECT_EQ(events[1].partition, "2");
  EXPECT_EQ(events[2].partition, events[3].partition);
  EXPECT_EQ(events[3].partition, events[4].partition);
}

TEST(fake_eventhubs_test, namespace_level_token_authorizes_every_hub_path) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")}, server.options().hub + "/Partitions/0");
  script.audience = "sb://localhost/";
  script.token = token_for(server, script.audience);
  const Result result = ScriptedClient(script).run();
  EXPECT_EQ(result.cbs_status, 202);
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted"}));
}

TEST(fake_eventhubs_test, wrong_key_gets_401_and_the_link_is_refused) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")});
  script.token = token_for(server, script.audience, 3600s, std::string("not-the-key"));
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_EQ(result.cbs_status, 401);
  EXPECT_EQ(result.link_error, "amqp:unauthorized-access");
  EXPECT_TRUE(server.events().empty());
}

TEST(fake_eventhubs_test, wrong_key_name_gets_401) {
  FakeEventHubsServer server;
  auto script = sending(server, {});
  script.target.clear();
  script.token = make_sas_token(script.audience, "other-name", server.options().key,
                                std::chrono::system_clock::now() + 1h);
  EXPECT_EQ(ScriptedClient(script).run().cbs_status, 401);
}

TEST(fake_eventhubs_test, expired_token_gets_401) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")});
  script.token = token_for(server, script.audience, -10s);
  const Result result = ScriptedClient(script).run();
  EXPECT_EQ(result.cbs_status, 401);
  EXPECT_NE(result.cbs_description.find("xpired"), std::string::npos) << result.cbs_description;
  EXPECT_EQ(result.link_error, "amqp:unauthorized-access");
}

TEST(fake_eventhubs_test, sending_without_a_token_is_refused) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")});
  script.token.clear();
  const Result result = ScriptedClient(script).run();
  EXPECT_EQ(result.link_error, "amqp:unauthorized-access");
}

TEST(fake_eventhubs_test, unknown_hub_and_partition_are_not_found) {
  FakeEventHubsServer server;
  auto other_hub = sending(server, {event("x")}, "other-hub");
  other_hub.audience = "sb://localhost/other-hub";
  other_hub.token = token_for(server, other_hub.audience);
  const Result hub_result = ScriptedClient(other_hub).run();
  EXPECT_EQ(hub_result.cbs_status, 404);
  EXPECT_EQ(hub_result.link_error, "amqp:not-found");

  auto bad_partition = sending(server, {event("x")}, server.options().hub + "/Partitions/9");
  EXPECT_EQ(ScriptedClient(bad_partition).run().link_error, "amqp:not-found");
}

TEST(fake_eventhubs_test, hub_name_is_case_insensitive) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")}, "TEST-Hub");
  EXPECT_EQ(ScriptedClient(script).run().outcomes, (std::vector<std::string>{"accepted"}));
}

TEST(fake_eventhubs_test, oversize_message_is_rejected_with_message_size_exceeded) {
  FakeEventHubsServer server(with([](auto& o) { o.max_message_size = 2048; }));
  auto script = sending(server, {event(std::string(4096, 'x')), event("small")});
  const Result result = ScriptedClient(script).run();
  EXPECT_EQ(result.max_message_size, 2048u);
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"amqp:link:message-size-exceeded", "accepted"}));
  EXPECT_EQ(server.events().size(), 1u);
}

TEST(fake_eventhubs_test, reject_every_and_server_busy_every_inject_their_conditions) {
  FakeEventHubsServer rejecting(with([](auto& o) { o.reject_every = 3; }));
  std::vector<proton::message> six(6, event("x"));
  EXPECT_EQ(ScriptedClient(sending(rejecting, six)).run().outcomes,
            (std::vector<std::string>{"accepted", "accepted", "amqp:decode-error", "accepted", "accepted",
                                      "amqp:decode-error"}));
  EXPECT_EQ(rejecting.events().size(), 4u);

  FakeEventHubsServer busy(with([](auto& o) { o.server_busy_every = 2; }));
  EXPECT_EQ(ScriptedClient(sending(busy, std::vector<proton::message>(4, event("y")))).run().outcomes,
            (std::vector<std::string>{"accepted", "com.microsoft:server-busy", "accepted",
                                      "com.microsoft:server-busy"}));

  FakeEventHubsServer custom(with([](auto& o) {
    o.reject_every = 1;
    o.extra_args = {"--reject-condition", "com.microsoft:argument-error"};
  }));
  EXPECT_EQ(ScriptedClient(sending(custom, {event("z")})).run().outcomes,
            (std::vector<std::string>{"com.microsoft:argument-error"}));
}

TEST(fake_eventhubs_test, drop_after_closes_the_connection) {
  FakeEventHubsServer server(with([](auto& o) { o.drop_after = 3; }));
  const Result result = ScriptedClient(sending(server, std::vector<proton::message>(10, event("x")))).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_FALSE(result.transport_error.empty());
  std::size_t accepted = 0;
  for (const auto& outcome : result.outcomes) accepted += outcome == "accepted";
  EXPECT_EQ(accepted, 3u);
  EXPECT_EQ(server.events().size(), 3u);
}

TEST(fake_eventhubs_test, drop_connections_closes_every_client_socket) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")});
  script.wait_for_link_error = true;  // stay connected after the acceptance
  Result result;
  std::thread client([&] { result = ScriptedClient(script).run(); });
  const bool recorded = wait_until([&] { return server.events().size() == 1; }, 5s);
  server.drop_connections();
  client.join();
  ASSERT_TRUE(recorded) << server.log();
  EXPECT_FALSE(result.timed_out);
  EXPECT_FALSE(result.transport_error.empty());
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted"}));
  // The server keeps listening.
  EXPECT_EQ(ScriptedClient(sending(server, {event("y")})).run().outcomes,
            (std::vector<std::string>{"accepted"}));
}

TEST(fake_eventhubs_test, delay_ms_delays_dispositions) {
  FakeEventHubsServer server(with([](auto& o) { o.delay_ms = 300; }));
  const auto start = std::chrono::steady_clock::now();
  const Result result = ScriptedClient(sending(server, {event("x"), event("y")})).run();
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted", "accepted"}));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
}

TEST(fake_eventhubs_test, credit_comes_back_with_each_disposition) {
  // Two credits and 300 ms per disposition: the 3rd and 4th event can only go out once the answers to
  // the first two came back, so the four answers take two rounds, as with the service.
  FakeEventHubsServer server(with([](auto& o) {
    o.delay_ms = 300;
    o.credit = 2;
  }));
  const auto start = std::chrono::steady_clock::now();
  const Result result =
      ScriptedClient(sending(server, {event("a"), event("b"), event("c"), event("d")})).run();
  EXPECT_EQ(result.outcomes, (std::vector<std::string>(4, "accepted")));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 600ms);
}

TEST(fake_eventhubs_test, detach_link_after_detaches_the_link_of_the_nth_event) {
  FakeEventHubsServer server(with([](auto& o) { o.detach_link_after = 2; }));
  auto script = sending(server, {event("a"), event("b")});
  script.wait_for_link_error = true;
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted", "accepted"}));
  EXPECT_EQ(result.link_error, "amqp:link:detach-forced") << server.log();
  const auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_FALSE(events[0].link.empty());  // the name of the client's sender link
  EXPECT_EQ(events[0].link, events[1].link);
}

TEST(fake_eventhubs_test, threads_serve_connections_in_parallel_and_record_each_event_once) {
  FakeEventHubsServer server(with([](auto& o) {
    o.extra_args = {"--threads", "2"};
    o.drop_after = 70;  // a fault that counts over both connections
  }));
  std::vector<Result> results(3);
  std::vector<std::thread> clients;
  for (auto& result : results) {
    clients.emplace_back([&] {
      result = ScriptedClient(sending(server, std::vector<proton::message>(50, event("x")))).run();
    });
  }
  for (auto& client : clients) client.join();
  std::size_t accepted = 0;
  for (const auto& result : results) {
    EXPECT_FALSE(result.timed_out) << server.log();
    for (const auto& outcome : result.outcomes) accepted += outcome == "accepted";
  }
  const auto events = server.events();
  EXPECT_EQ(events.size(), accepted);
  std::set<std::uint64_t> seqs;
  for (const auto& e : events) seqs.insert(e.seq);
  EXPECT_EQ(seqs.size(), events.size());  // one line per event, none torn or repeated
  EXPECT_NE(server.log().find("\"fault\":\"drop_connection\""), std::string::npos);
}

TEST(fake_eventhubs_test, expired_token_detaches_the_link) {
  FakeEventHubsServer server;
  auto script = sending(server, {event("x")});
  script.token = token_for(server, script.audience, 2s);
  script.wait_for_link_error = true;
  const Result result = ScriptedClient(script).run();
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted"}));
  EXPECT_EQ(result.link_error, "amqp:unauthorized-access") << server.log();
}

TEST(fake_eventhubs_test, tls_listener_with_the_test_ca) {
  FakeEventHubsServer server(with([](auto& o) { o.tls = true; }));
  auto script = sending(server, {event("secure")});
  script.tls = server.certificates();
  const Result result = ScriptedClient(script).run();
  ASSERT_FALSE(result.timed_out) << server.log();
  EXPECT_EQ(result.cbs_status, 202);
  EXPECT_EQ(result.outcomes, (std::vector<std::string>{"accepted"}));
  EXPECT_EQ(server.events().at(0).body, "secure");
}

TEST(fake_eventhubs_test, management_reads_hub_and_partition_properties) {
  FakeEventHubsServer server(with([](auto& o) { o.partitions = 3; }));
  ASSERT_EQ(ScriptedClient(sending(server, {event("x")}, "test-hub/Partitions/1")).run().outcomes.size(), 1u);

  Script hub;
  hub.port = server.port();
  hub.management = std::map<std::string, std::string>{
      {"operation", "READ"}, {"type", "com.microsoft:eventhub"}, {"name", "test-hub"}};
  const Result hub_result = ScriptedClient(hub).run();
  ASSERT_EQ(hub_result.management_status, 200) << server.log();
  const auto body = proton::get<std::map<std::string, proton::value>>(hub_result.management_body);
  EXPECT_EQ(proton::get<std::string>(body.at("name")), "test-hub");
  EXPECT_EQ(proton::get<std::int32_t>(body.at("partition_count")), 3);
  EXPECT_EQ(proton::get<std::vector<std::string>>(body.at("partition_ids")),
            (std::vector<std::string>{"0", "1", "2"}));

  Script partition = hub;
  partition.management = std::map<std::string, std::string>{
      {"operation", "READ"}, {"type", "com.microsoft:partition"}, {"name", "test-hub"}, {"partition", "1"}};
  const Result partition_result = ScriptedClient(partition).run();
  ASSERT_EQ(partition_result.management_status, 200);
  const auto props = proton::get<std::map<std::string, proton::value>>(partition_result.management_body);
  EXPECT_EQ(proton::get<std::string>(props.at("partition")), "1");
  EXPECT_EQ(proton::get<std::int64_t>(props.at("last_enqueued_sequence_number")), 0);
  EXPECT_FALSE(proton::get<bool>(props.at("is_partition_empty")));
}

TEST(fake_eventhubs_test, restart_keeps_the_record_and_continues_seq) {
  FakeEventHubsServer server;
  ASSERT_EQ(ScriptedClient(sending(server, {event("before")})).run().outcomes.size(), 1u);
  server.restart();
  ASSERT_EQ(ScriptedClient(sending(server, {event("after")})).run().outcomes.size(), 1u);
  const auto events = server.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].body, "after");
  EXPECT_EQ(events[1].seq, 2u);
}

}  // namespace
}  // namespace connector::testing
