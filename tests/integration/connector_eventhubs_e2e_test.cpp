// End to end: the connector binary between a real redis-server and fake-eventhubs over AMQP 1.0.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "support/chaos_harness.hpp"
#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

constexpr const char* kStream = "eh:stream";
constexpr const char* kGroup = "eh-group";

std::vector<std::string> add_entries(RedisServer& redis, int count) {
  std::vector<std::string> ids;
  for (int i = 0; i < count; ++i) {
    ids.emplace_back(redis
                         .command({"XADD", kStream, "*", "device", "dev-" + std::to_string(i % 5), "seq",
                                   std::to_string(i)})
                         .str());
  }
  return ids;
}

/// Entries the group has read minus those still pending: acked ones (no claims in these tests).
long long acked_by_group(RedisServer& redis) {
  RedisReply groups = redis.command({"XINFO", "GROUPS", kStream});
  for (std::size_t g = 0; g < groups.size(); ++g) {
    long long read = -1;
    long long pending_now = -1;
    const auto group = groups[g];
    for (std::size_t i = 0; i + 1 < group.size(); i += 2) {
      if (group[i].str() == "entries-read") read = group[i + 1].integer();
      if (group[i].str() == "pending") pending_now = group[i + 1].integer();
    }
    if (read >= 0 && pending_now >= 0) return read - pending_now;
  }
  return 0;  // no group yet: nothing read, nothing acked
}

long long pending(RedisServer& redis) {
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup});
  return reply.is_array() ? reply[0].integer() : -1;
}

std::map<std::string, std::string> settings_for(const RedisServer& redis, const FakeEventHubsServer& hub) {
  return {{"REDIS_URL", redis.url()},
          {"STREAM_KEY", kStream},
          {"CONSUMER_GROUP_NAME", kGroup},
          {"CONSUMER_NAME", "eh-consumer"},
          {"GROUP_START_ID", "0"},
          {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
          {"EVENT_HUB_CONNECTION_STRING", hub.connection_string()},
          {"POLL_TIMEOUT_MS", "200"},
          {"RETRY_DELAY_MS", "100"},
          {"SHUTDOWN_GRACE_PERIOD_MS", "3000"}};
}

std::set<std::string> recorded_ids(FakeEventHubsServer& hub) {
  std::set<std::string> ids;
  for (const auto& event : hub.events()) ids.insert(event.properties.at("redis-id"));
  return ids;
}

TEST(connector_eventhubs_e2e_test, entries_arrive_with_properties_and_partition_key_and_are_acked) {
  RedisServer redis;
  FakeEventHubsServer hub;
  const auto ids = add_entries(redis, 300);
  auto settings = settings_for(redis, hub);
  settings["PARTITION_KEY_FIELD"] = "device";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return recorded_ids(hub).size() == 300 && pending(redis) == 0; }, 30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  const auto events = hub.events();
  std::map<std::string, std::set<std::string>> partitions_by_key;
  for (const auto& event : events) {
    const auto body = nlohmann::json::parse(event.body);
    const std::string& id = event.properties.at("redis-id");
    EXPECT_EQ(event.properties.at("redis-stream"), kStream);
    EXPECT_EQ(event.content_type, "application/json");
    EXPECT_EQ(event.body_kind, "data");
    ASSERT_TRUE(event.partition_key.has_value());
    EXPECT_EQ(*event.partition_key, body["device"]);
    EXPECT_EQ(ids[std::stoul(body["seq"].get<std::string>())], id);
    partitions_by_key[*event.partition_key].insert(event.partition);
  }
  for (const auto& [key, partitions] : partitions_by_key) EXPECT_EQ(partitions.size(), 1u) << key;
  EXPECT_EQ(connector.log().find(hub.options().key), std::string::npos) << "the SAS key reached the log";
}

// Three streams, one output: every entry of each stream arrives once, says which stream it came from,
// and all of them travel on one AMQP connection to the service.
TEST(connector_eventhubs_e2e_test, several_streams_share_one_connection) {
  RedisServer redis;
  FakeEventHubsServer hub;
  const std::vector<std::string> streams = {"eh:{a}", "eh:{b}", "eh:{c}"};
  std::map<std::string, std::string> stream_of;  // entry ID → its stream (IDs may repeat across streams)
  for (int i = 0; i < 150; ++i) {
    for (const auto& stream : streams) {
      const std::string id(redis.command({"XADD", stream, "*", "seq", std::to_string(i)}).str());
      stream_of[stream + "/" + id] = stream;
    }
  }
  auto settings = settings_for(redis, hub);
  settings["STREAM_KEY"] = "eh:{a},eh:{b},eh:{c}";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  std::set<std::string> arrived;
  ASSERT_TRUE(wait_until(
      [&] {
        arrived.clear();
        for (const auto& event : hub.events()) {
          arrived.insert(event.properties.at("redis-stream") + "/" + event.properties.at("redis-id"));
        }
        return arrived.size() == stream_of.size();
      },
      30s))
      << arrived.size() << " of " << stream_of.size() << "\n"
      << connector.log();
  for (const auto& [key, stream] : stream_of) EXPECT_TRUE(arrived.count(key)) << key;
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  for (const auto& stream : streams) {
    const RedisReply still = redis.command({"XPENDING", stream, kGroup});
    EXPECT_EQ(still[0].integer(), 0) << stream;
  }
  EXPECT_EQ(hub.count_in_log("\"msg\":\"connection_opened\""), 1) << hub.log();
}

TEST(connector_eventhubs_e2e_test, sender_links_setting_spreads_keys_over_links_and_keeps_each_keys_order) {
  RedisServer redis;
  FakeEventHubsServer hub;
  for (int i = 0; i < 600; ++i) {
    redis.command({"XADD", kStream, "*", "device", "dev-" + std::to_string(i % 30), "seq", std::to_string(i)});
  }
  auto settings = settings_for(redis, hub);
  settings["PARTITION_KEY_FIELD"] = "device";
  settings["EVENT_HUBS_SENDER_LINKS"] = "3";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return recorded_ids(hub).size() == 600 && pending(redis) == 0; }, 30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  std::set<std::string> links;
  std::map<std::string, long> last_seq_by_key;
  for (const auto& event : hub.events()) {
    links.insert(event.link);
    const long seq = std::stol(nlohmann::json::parse(event.body)["seq"].get<std::string>());
    auto [it, first] = last_seq_by_key.emplace(*event.partition_key, seq);
    if (!first) {
      EXPECT_GT(seq, it->second) << *event.partition_key;  // a key's events arrive in stream order
      it->second = seq;
    }
  }
  EXPECT_EQ(links.size(), 3u);
  EXPECT_EQ(last_seq_by_key.size(), 30u);
}

TEST(connector_eventhubs_e2e_test, two_instances_share_the_group_without_sending_anything_twice) {
  RedisServer redis;
  FakeEventHubsServer hub;
  auto settings = settings_for(redis, hub);
  settings["BATCH_SIZE"] = "10";
  const auto work_dir = hub.record_file().parent_path() / "connector";
  settings["CONSUMER_NAME"] = "instance-a";
  ConnectorProcess first(settings, work_dir);
  settings["CONSUMER_NAME"] = "instance-b";
  ConnectorProcess second(settings, work_dir);
  ASSERT_TRUE(first.wait_started() && second.wait_started());
  for (int round = 0; round < 20; ++round) {
    add_entries(redis, 50);
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE(wait_until([&] { return hub.events().size() >= 1000 && pending(redis) == 0; }, 30s));
  EXPECT_EQ(first.interrupt_and_wait(), 0);
  EXPECT_EQ(second.interrupt_and_wait(), 0);
  EXPECT_EQ(hub.events().size(), 1000u) << "an entry was sent twice without any fault";
  EXPECT_EQ(recorded_ids(hub).size(), 1000u);
  // Both read from the group as consumers of their own.
  RedisReply consumers = redis.command({"XINFO", "CONSUMERS", kStream, kGroup});
  EXPECT_EQ(consumers.size(), 2u);
}

TEST(connector_eventhubs_e2e_test, nothing_is_acked_before_event_hubs_accepted_it) {
  RedisServer redis;
  FakeEventHubsOptions options;
  options.delay_ms = 1500;
  FakeEventHubsServer hub(options);
  add_entries(redis, 20);
  ConnectorProcess connector(settings_for(redis, hub), hub.record_file().parent_path() / "connector");
  // Sampled all along the 1.5 s that each disposition is held back: what the group has acked (read
  // first) never exceeds what the hub had accepted (read after it).
  int samples = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        const long long acked = acked_by_group(redis);
        const auto accepted = static_cast<long long>(hub.events().size());
        EXPECT_LE(acked, accepted) << "acked before the disposition arrived";
        ++samples;
        return acked == 20;
      },
      20s))
      << connector.log();
  EXPECT_GT(samples, 1);
  EXPECT_EQ(pending(redis), 0);
  EXPECT_EQ(recorded_ids(hub).size(), 20u);
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
}

TEST(connector_eventhubs_e2e_test, tls_with_the_configured_ca_and_a_fixed_partition) {
  RedisServer redis;
  FakeEventHubsOptions options;
  options.tls = true;
  FakeEventHubsServer hub(options);
  add_entries(redis, 50);
  auto settings = settings_for(redis, hub);
  settings["EVENT_HUBS_TLS_CA_FILE"] = hub.certificates()->ca_cert.string();
  settings["EVENT_HUB_PARTITION_ID"] = "2";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return recorded_ids(hub).size() == 50 && pending(redis) == 0; }, 30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  for (const auto& event : hub.events()) EXPECT_EQ(event.partition, "2");
}

TEST(connector_eventhubs_e2e_test, a_wrong_key_stops_the_connector_at_startup_with_status_3) {
  RedisServer redis;
  FakeEventHubsServer hub;
  auto settings = settings_for(redis, hub);
  std::string connection_string = hub.connection_string();
  const std::string wrong_key = "definitely-the-wrong-key";
  connection_string.replace(connection_string.find(hub.options().key), hub.options().key.size(), wrong_key);
  settings["EVENT_HUB_CONNECTION_STRING"] = connection_string;
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  EXPECT_EQ(connector.log().find(wrong_key), std::string::npos) << "the key reached the log";
  EXPECT_NE(connector.log().find("nauthorized"), std::string::npos) << connector.log();
}

TEST(connector_eventhubs_e2e_test, an_unknown_hub_stops_the_connector_at_startup_with_status_3) {
  RedisServer redis;
  FakeEventHubsServer hub;
  auto settings = settings_for(redis, hub);
  std::string connection_string = hub.connection_string();
  connection_string.replace(connection_string.find("EntityPath=test-hub"), 19, "EntityPath=no-such-hub");
  settings["EVENT_HUB_CONNECTION_STRING"] = connection_string;
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  EXPECT_NE(connector.log().find("no-such-hub"), std::string::npos) << connector.log();
}

TEST(connector_eventhubs_e2e_test, busy_rejecting_and_dropping_service_loses_nothing) {
  RedisServer redis;
  FakeEventHubsOptions options;
  // Deliveries, not events: with batches on, every 7th delivery rejected means batches split and some of
  // their events, re-sent alone, rejected again and dead-lettered.
  options.server_busy_every = 19;
  options.reject_every = 7;
  options.drop_after = 150;
  FakeEventHubsServer hub(options);
  const auto ids = add_entries(redis, 600);
  auto settings = settings_for(redis, hub);
  settings["BATCH_SIZE"] = "20";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until(
      [&] {
        return pending(redis) == 0 &&
               recorded_ids(hub).size() +
                       redis.command({"XLEN", std::string(kStream) + ":dead-letter"}).integer() >=
                   600;
      },
      90s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  const auto recorded = recorded_ids(hub);
  const auto dead_reasons = dead_lettered(redis, std::string(kStream) + ":dead-letter");
  EXPECT_GT(dead_reasons.size(), 0u) << "reject-every should have dead-lettered some";
  for (const auto& [id, reason] : dead_reasons)
    EXPECT_NE(reason.find("decode-error"), std::string::npos) << reason;
  for (const auto& id : ids) {
    EXPECT_TRUE(recorded.count(id) || dead_reasons.count(id)) << "lost: " << id;
  }
  EXPECT_NE(connector.log().find("event_retry"), std::string::npos);
  EXPECT_NE(connector.log().find("eventhubs_batch_rejected"), std::string::npos);
}

TEST(connector_eventhubs_e2e_test, an_entry_larger_than_the_hub_takes_is_dead_lettered_and_the_rest_flow) {
  RedisServer redis;
  FakeEventHubsOptions options;
  options.max_message_size = 64 * 1024;
  FakeEventHubsServer hub(options);
  redis.command({"XADD", kStream, "*", "n", "before"});
  const std::string big_id(redis.command({"XADD", kStream, "*", "blob", std::string(100 * 1024, 'b')}).str());
  redis.command({"XADD", kStream, "*", "n", "after"});
  ConnectorProcess connector(settings_for(redis, hub), hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return recorded_ids(hub).size() == 2 && pending(redis) == 0; }, 30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  RedisReply dead = redis.command({"XRANGE", std::string(kStream) + ":dead-letter", "-", "+"});
  ASSERT_EQ(dead.size(), 1u);
  std::map<std::string, std::string> fields;
  for (std::size_t f = 0; f + 1 < dead[0][1].size(); f += 2) {
    fields[std::string(dead[0][1][f].str())] = std::string(dead[0][1][f + 1].str());
  }
  EXPECT_EQ(fields["dlq-original-id"], big_id);
  EXPECT_NE(fields["dlq-reason"].find("exceeds"), std::string::npos) << fields["dlq-reason"];
  EXPECT_EQ(fields["blob"].size(), 100u * 1024);
}

TEST(connector_eventhubs_e2e_test, shutdown_with_deliveries_in_flight_acks_only_what_was_accepted) {
  RedisServer redis;
  FakeEventHubsOptions options;
  options.delay_ms = 3000;
  FakeEventHubsServer hub(options);
  const auto ids = add_entries(redis, 40);
  auto settings = settings_for(redis, hub);
  settings["SHUTDOWN_GRACE_PERIOD_MS"] = "500";
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  ASSERT_TRUE(wait_until([&] { return pending(redis) == 40; }, 20s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(20s), 0) << connector.log();
  // Whatever is no longer pending was acked: it must have been accepted.
  RedisReply still = redis.command({"XPENDING", kStream, kGroup, "-", "+", "1000"});
  std::set<std::string> still_pending;
  for (std::size_t i = 0; i < still.size(); ++i) still_pending.emplace(still[i][0].str());
  const auto recorded = recorded_ids(hub);
  for (const auto& id : ids) {
    if (!still_pending.count(id)) {
      EXPECT_TRUE(recorded.count(id)) << "acked but never accepted: " << id;
    }
  }
  EXPECT_GT(still_pending.size(), 0u) << "the grace period was shorter than the disposition delay";
}

}  // namespace
}  // namespace connector
