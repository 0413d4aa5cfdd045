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
  ChaosInstances instances({{"REDIS_URL", redis.url()},
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
                            {"LOG_LEVEL", "info"}},
                           dir.path() / "logs", {"eh-1", "eh-2", "eh-doomed"});
  ChaosPublisher publisher(redis, stream, scale, 300 * 1024);
  ChaosReport report;
  run_chaos(redis, publisher, instances, {"eh-1", "eh-2"}, "eh-doomed", scale, report,
            [&] { hub.drop_connections(); });
  const bool drained = wait_drained(redis, stream, group, 180s);
  instances.stop_all();

  std::map<std::string, std::size_t> deliveries;
  for (const auto& event : hub.events()) ++deliveries[event.properties.at("redis-id")];
  const auto dead = check_deliveries(
      redis, stream, group,
      [&](const std::string& id) {
        const auto found = deliveries.find(id);
        return found == deliveries.end() ? std::size_t{0} : found->second;
      },
      report);
  std::size_t oversized_dead = 0;
  for (const auto& [id, reason] : dead) oversized_dead += reason.find("exceeds") != std::string::npos;
  std::cout << report.summary() << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(report.published, scale.entries);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(oversized_dead, scale.entries / 1000) << "every 300 KB entry belongs in the dead-letter stream";
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
  EXPECT_GT(report.output_faults, 0);
}

}  // namespace
}  // namespace connector
