// An Event Hubs outage many times longer than PENDING_MESSAGE_MIN_IDLE_MS, with two instances that are
// killed and restarted around it: nothing the output would accept may end in the dead-letter stream.
#include <gtest/gtest.h>

#include <iostream>

#include "support/chaos_harness.hpp"
#include "support/fake_eventhubs_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

TEST(chaos_test, an_event_hubs_outage_with_restarts_dead_letters_nothing) {
  ChaosScale scale = ChaosScale::from_environment();
  scale.entries = std::min<std::size_t>(scale.entries, 3000);
  scale.publish_rate = 1000;
  constexpr auto kMinIdle = 1000ms;
  RedisServer redis;
  FakeEventHubsServer hub;
  TempDir dir;
  const std::string stream = "chaos:outage";
  const std::string group = "chaos-outage";
  ChaosInstances instances({{"REDIS_URL", redis.url()},
                            {"STREAM_KEY", stream},
                            {"CONSUMER_GROUP_NAME", group},
                            {"GROUP_START_ID", "0"},
                            {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                            {"EVENT_HUB_CONNECTION_STRING", hub.connection_string()},
                            {"BATCH_SIZE", "50"},
                            {"MAX_IN_FLIGHT_BATCHES", "64"},  // back-pressure must not be what stops claims
                            {"POLL_TIMEOUT_MS", "200"},
                            {"RETRY_DELAY_MS", "100"},
                            {"MAX_DELIVERY_ATTEMPTS", "3"},
                            {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "200"},
                            {"PENDING_MESSAGE_MIN_IDLE_MS", std::to_string(kMinIdle.count())},
                            {"SHUTDOWN_GRACE_PERIOD_MS", "1000"},
                            {"LOG_LEVEL", "info"}},
                           dir.path() / "logs", {"outage-1", "outage-2"});
  ASSERT_TRUE(instances.wait_started()) << instances.logs();
  ChaosScale half = scale;
  half.entries = scale.entries / 2;
  ChaosPublisher before(redis, stream, half, 0);
  before.start();
  before.join();

  // The outage. A trickle of entries arrives meanwhile (few enough that back-pressure never stops
  // the claim loop); both instances hold them in flight. One instance is killed in the middle of it,
  // the other runs through it and would claim everything idle if claims went on while the output is
  // down, or took its own entries in flight.
  hub.stop();
  std::minstd_rand random(scale.seed);
  for (int i = 0; i < 40; ++i) {
    redis.command({"XADD", stream, "*", "kind", "during-outage", "seq", std::to_string(i)});
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 50));
  }
  std::this_thread::sleep_for(kMinIdle * 2 + std::chrono::milliseconds(random() % 1000));
  instances.kill("outage-1");
  std::this_thread::sleep_for(kMinIdle * 3 + std::chrono::milliseconds(random() % 1000));
  hub.start();

  // After it: the killed one comes back and re-reads its own pending list, the other is restarted
  // too, and publishing goes on.
  instances.start("outage-1");
  instances.kill_and_restart("outage-2", random);
  ChaosPublisher after(redis, stream, half, 0);
  after.start();
  after.join();
  const bool drained = wait_drained(redis, stream, group, 120s);
  instances.stop_all();

  std::map<std::string, std::size_t> deliveries;
  for (const auto& event : hub.events()) ++deliveries[event.properties.at("redis-id")];
  ChaosReport report;
  report.seed = scale.seed;
  report.kills = 2;
  report.output_faults = 1;
  check_deliveries(
      redis, stream, group,
      [&](const std::string& id) {
        const auto found = deliveries.find(id);
        return found == deliveries.end() ? std::size_t{0} : found->second;
      },
      report);
  std::cout << report.summary() << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(report.published, scale.entries);
  EXPECT_EQ(report.dead_lettered, 0u) << report.summary();
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
}

}  // namespace
}  // namespace connector
