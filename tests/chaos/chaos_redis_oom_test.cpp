// Redis at maxmemory with noeviction refuses writes (XADD, XGROUP CREATE) with OOM while reads, XACK and
// XCLAIM still work: healthy entries go on, dead letters wait, nothing is lost, and the logs say why.
#include <gtest/gtest.h>

#include <iostream>

#include "support/chaos_harness.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

void refuse_writes(RedisServer& redis, bool refuse) {
  redis.command({"CONFIG", "SET", "maxmemory", refuse ? "1" : "0"});
}

TEST(chaos_test, redis_refusing_writes_with_oom_loses_nothing) {
  ChaosScale scale = ChaosScale::from_environment();
  scale.entries = std::min<std::size_t>(scale.entries, 2000);
  scale.publish_rate = 2000;
  RedisServer redis({.extra_args = {"--maxmemory-policy", "noeviction"}});
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::string stream = "chaos:oom";
  const std::string group = "chaos-oom";
  // Entries without a `payload` field (one in a few hundred) cannot be encoded: they are dead letters.
  const std::map<std::string, std::string> settings = {{"REDIS_URL", redis.url()},
                                                       {"STREAM_KEY", stream},
                                                       {"CONSUMER_GROUP_NAME", group},
                                                       {"GROUP_START_ID", "0"},
                                                       {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"},
                                                       {"OUTPUT_DIRECTORY", output.string()},
                                                       {"OUTPUT_FSYNC", "false"},
                                                       {"MESSAGE_BODY_FIELD", "payload"},
                                                       {"BATCH_SIZE", "50"},
                                                       {"POLL_TIMEOUT_MS", "200"},
                                                       {"RETRY_DELAY_MS", "100"},
                                                       {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "300"},
                                                       {"PENDING_MESSAGE_MIN_IDLE_MS", "1000"},
                                                       {"LOG_LEVEL", "info"}};
  ChaosPublisher first(redis, stream, scale, 0);
  first.start();
  first.join();
  redis.command({"XGROUP", "CREATE", stream, group, "0"});
  std::size_t poison = 0;
  for (const auto& id : all_stream_ids(redis, stream)) {
    RedisReply entry = redis.command({"XRANGE", stream, id, id});
    bool has_payload = false;
    for (std::size_t f = 0; f + 1 < entry[0][1].size(); f += 2)
      has_payload |= entry[0][1][f].str() == "payload";
    poison += has_payload ? 0 : 1;
  }
  ASSERT_GT(poison, 0u);

  // Phase 1: writes refused from the start. The instances start (the group exists), deliver and ack
  // every healthy entry; the dead letters stay pending, also across a restart.
  refuse_writes(redis, true);
  ChaosInstances instances(settings, dir.path() / "logs", {"oom-1", "oom-2"});
  ASSERT_TRUE(instances.wait_started()) << instances.logs();
  ASSERT_TRUE(wait_until(
      [&] { return pending_entries(redis, stream, group) == static_cast<long long>(poison); }, 60s))
      << instances.logs();
  std::minstd_rand random(scale.seed);
  instances.kill_and_restart("oom-1", random);
  ASSERT_TRUE(instances.wait_started()) << instances.logs();

  // Phase 2: memory comes and goes while more is published (the publisher retries refused XADDs).
  ChaosPublisher second(redis, stream, scale, 0);
  refuse_writes(redis, false);
  second.start();
  ChaosReport report;
  report.seed = scale.seed;
  for (int flip = 0; flip < 6; ++flip) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + random() % 500));
    refuse_writes(redis, flip % 2 == 0);
    ++report.output_faults;
  }
  refuse_writes(redis, false);
  second.join();
  const bool drained = wait_drained(redis, stream, group, 120s);
  instances.stop_all();

  const auto dead = check_deliveries(
      redis, stream, group,
      [&](const std::string& id) { return std::filesystem::exists(output / (id + ".json")) ? 1u : 0u; },
      report);
  std::cout << report.summary() << std::endl;
  const std::string logs = instances.logs();
  EXPECT_TRUE(drained);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(report.dead_lettered, poison);
  for (const auto& [id, reason] : dead)
    EXPECT_NE(reason.find("payload"), std::string::npos) << id << ": " << reason;
  EXPECT_NE(logs.find("dead_letter_failed"), std::string::npos);
  EXPECT_NE(logs.find("OOM command not allowed"), std::string::npos);
}

}  // namespace
}  // namespace connector
