// Zero loss with the LOCAL_FILE output while connectors are SIGKILLed, Redis restarts, and one instance
// dies for good. Sized for CI by default; scripts/soak.sh runs it longer (ChaosScale).
#include <signal.h>

#include <iostream>

#include <gtest/gtest.h>

#include "support/chaos_harness.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

TEST(chaos_test, local_file_output_loses_nothing_under_kills_and_redis_restarts) {
  const ChaosScale scale = ChaosScale::from_environment();
  RedisServerOptions redis_options;
  redis_options.aof_always = true;
  RedisServer redis(redis_options);
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::string stream = "chaos {stream} with spaces";  // keys with spaces and braces must work
  const std::string group = "chaos-group";
  std::map<std::string, std::string> settings = {
      {"REDIS_URL", redis.url()},          {"STREAM_KEY", stream},
      {"CONSUMER_GROUP_NAME", group},      {"GROUP_START_ID", "0"},
      {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"}, {"OUTPUT_DIRECTORY", output.string()},
      {"BATCH_SIZE", "50"},                {"POLL_TIMEOUT_MS", "200"},
      {"RETRY_DELAY_MS", "100"},           {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "500"},
      {"PENDING_MESSAGE_MIN_IDLE_MS", "1500"}, {"SHUTDOWN_GRACE_PERIOD_MS", "3000"},
      {"LOG_LEVEL", "info"}};
  auto start_instance = [&](const std::string& name) {
    auto with_name = settings;
    with_name["CONSUMER_NAME"] = name;
    return std::make_unique<ConnectorProcess>(with_name, dir.path() / "logs");
  };
  std::map<std::string, std::unique_ptr<ConnectorProcess>> instances;
  for (const char* name : {"chaos-1", "chaos-2", "chaos-doomed"}) instances[name] = start_instance(name);

  ChaosPublisher publisher(redis, stream, scale, 2 * 1024 * 1024);
  publisher.start();
  ChaosReport report;
  std::minstd_rand random(std::random_device{}());
  const auto started = std::chrono::steady_clock::now();
  auto last_redis_restart = started;
  bool doomed_alive = true;
  while (!publisher.done() || report.kills < scale.min_kills || report.redis_restarts < scale.min_redis_restarts) {
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + random() % 550));
    if (doomed_alive && publisher.written() > scale.entries / 2) {
      instances["chaos-doomed"]->process().kill();  // never comes back: the others must claim its entries
      doomed_alive = false;
      ++report.kills;
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    if (random() % 100 < 15 && now - last_redis_restart > 3s) {
      redis.restart();
      last_redis_restart = now;
      ++report.redis_restarts;
      continue;
    }
    const std::string victim = random() % 2 == 0 ? "chaos-1" : "chaos-2";
    instances[victim]->process().kill();
    ++report.kills;
    std::this_thread::sleep_for(std::chrono::milliseconds(random() % 300));
    instances[victim] = start_instance(victim);
  }
  publisher.join();
  const bool drained = wait_drained(redis, stream, group, 180s);
  for (const char* name : {"chaos-1", "chaos-2"}) {
    // A process SIGINTed before main() blocked the signal dies of it (nothing is lost, but it is not
    // the clean stop this checks): wait until the last restart is up.
    EXPECT_TRUE(instances[name]->wait_started()) << instances[name]->log();
    EXPECT_EQ(instances[name]->interrupt_and_wait(30s), 0) << instances[name]->log();
  }

  const auto ids = all_stream_ids(redis, stream);
  const auto dead = dead_lettered(redis, stream + ":dead-letter");
  report.published = ids.size();
  report.still_pending = pending_entries(redis, stream, group);
  for (const auto& id : ids) {
    const bool delivered = std::filesystem::exists(output / (id + ".json"));
    const auto dead_entry = dead.find(id);
    if (delivered) ++report.delivered;
    if (dead_entry != dead.end()) {
      ++report.dead_lettered;
      EXPECT_FALSE(dead_entry->second.empty()) << "dead-lettered without a reason: " << id;
    }
    if (!delivered && dead_entry == dead.end()) {
      ++report.missing;
      if (report.missing_examples.size() < 10) report.missing_examples.push_back(id);
    }
  }
  std::cout << report.summary() << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(report.published, scale.entries);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
}

}  // namespace
}  // namespace connector
