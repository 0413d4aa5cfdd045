// Zero loss with the EVENT_HUBS output while connectors are SIGKILLed, Redis restarts, and
// fake-eventhubs answers server-busy, rejects deliveries and drops connections.
#include <iostream>

#include <gtest/gtest.h>

#include "support/chaos_harness.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

TEST(chaos_test, event_hubs_output_loses_nothing_under_kills_restarts_and_a_misbehaving_service) {
  const ChaosScale scale = ChaosScale::from_environment();
  RedisServerOptions redis_options;
  redis_options.aof_always = true;
  RedisServer redis(redis_options);
  FakeEventHubsOptions hub_options;
  hub_options.server_busy_every = 200;
  hub_options.reject_every = 1999;
  hub_options.drop_after = 3000;
  hub_options.max_message_size = 256 * 1024;  // Basic tier: the 300 KB entries cannot be sent
  FakeEventHubsServer hub(hub_options);
  TempDir dir;
  const std::string stream = "chaos:eh";
  const std::string group = "chaos-eh";
  std::map<std::string, std::string> settings = {
      {"REDIS_URL", redis.url()},
      {"STREAM_KEY", stream},
      {"CONSUMER_GROUP_NAME", group},
      {"GROUP_START_ID", "0"},
      {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
      {"EVENT_HUB_CONNECTION_STRING", hub.connection_string()},
      {"PARTITION_KEY_FIELD", "kind"},
      {"BATCH_SIZE", "50"},
      {"POLL_TIMEOUT_MS", "200"},
      {"RETRY_DELAY_MS", "100"},
      {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "500"},
      {"PENDING_MESSAGE_MIN_IDLE_MS", "2000"},
      {"SHUTDOWN_GRACE_PERIOD_MS", "3000"},
      {"LOG_LEVEL", "info"}};
  auto start_instance = [&](const std::string& name) {
    auto with_name = settings;
    with_name["CONSUMER_NAME"] = name;
    return std::make_unique<ConnectorProcess>(with_name, dir.path() / "logs");
  };
  std::map<std::string, std::unique_ptr<ConnectorProcess>> instances;
  for (const char* name : {"eh-1", "eh-2", "eh-doomed"}) instances[name] = start_instance(name);

  ChaosPublisher publisher(redis, stream, scale, 300 * 1024);
  publisher.start();
  ChaosReport report;
  std::minstd_rand random(std::random_device{}());
  auto last_redis_restart = std::chrono::steady_clock::now();
  bool doomed_alive = true;
  while (!publisher.done() || report.kills < scale.min_kills || report.redis_restarts < scale.min_redis_restarts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 550));
    if (doomed_alive && publisher.written() > scale.entries / 2) {
      instances["eh-doomed"]->process().kill();
      doomed_alive = false;
      ++report.kills;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    const auto dice = random() % 100;
    if (dice < 12 && now - last_redis_restart > 3s) {
      redis.restart();
      last_redis_restart = now;
      ++report.redis_restarts;
    } else if (dice < 30) {
      hub.drop_connections();
      ++report.output_faults;
    } else {
      const std::string victim = random() % 2 == 0 ? "eh-1" : "eh-2";
      instances[victim]->process().kill();
      ++report.kills;
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % 300));
      instances[victim] = start_instance(victim);
    }
  }
  publisher.join();
  const bool drained = wait_drained(redis, stream, group, 180s);
  for (const char* name : {"eh-1", "eh-2"}) {
    // A process SIGINTed before main() blocked the signal dies of it (nothing is lost, but it is not
    // the clean stop this checks): wait until the last restart is up.
    EXPECT_TRUE(instances[name]->wait_started()) << instances[name]->log();
    EXPECT_EQ(instances[name]->interrupt_and_wait(30s), 0) << instances[name]->log();
  }

  std::map<std::string, std::size_t> deliveries;
  for (const auto& event : hub.events()) ++deliveries[event.properties.at("redis-id")];
  const auto ids = all_stream_ids(redis, stream);
  const auto dead = dead_lettered(redis, stream + ":dead-letter");
  report.published = ids.size();
  report.still_pending = pending_entries(redis, stream, group);
  std::size_t oversized_dead = 0;
  for (const auto& id : ids) {
    const auto delivered = deliveries.find(id);
    const auto dead_entry = dead.find(id);
    if (delivered != deliveries.end()) {
      ++report.delivered;
      report.duplicates += delivered->second - 1;
    }
    if (dead_entry != dead.end()) {
      ++report.dead_lettered;
      EXPECT_FALSE(dead_entry->second.empty()) << "dead-lettered without a reason: " << id;
      if (dead_entry->second.find("exceeds") != std::string::npos) ++oversized_dead;
    }
    if (delivered == deliveries.end() && dead_entry == dead.end()) {
      ++report.missing;
      if (report.missing_examples.size() < 10) report.missing_examples.push_back(id);
    }
  }
  std::cout << report.summary() << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(report.published, scale.entries);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(oversized_dead, scale.entries / 1000) << "every 300 KB entry belongs in the dead-letter stream";
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
}

}  // namespace
}  // namespace connector
