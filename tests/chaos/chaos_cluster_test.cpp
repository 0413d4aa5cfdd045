// The kill/restart chaos run against a real Redis Cluster: connectors SIGKILLed and restarted, one dying
// for good, and the stream's primary SIGKILLed (its replica promoted, the old node back as a replica)
// while entries flow. Entries a primary acknowledged but had not replicated when it died are gone from
// the stream, as the README's "Delivery guarantees" says; every entry the stream holds at the end must
// be delivered.
#include <gtest/gtest.h>

#include <iostream>

#include "sinks/output_directory.hpp"
#include "support/chaos_harness.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

TEST(chaos_test, local_file_output_loses_nothing_under_kills_and_cluster_failovers) {
  ChaosScale scale = ChaosScale::from_environment();
  RedisCluster cluster;
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::string stream = "{chaos}:stream";  // its dead-letter stream shares the slot
  const std::string group = "chaos-group";
  const ChaosRedis redis(cluster, stream);
  ChaosInstances instances({{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(cluster.port(0))},
                            {"REDIS_CLUSTER", "true"},
                            {"STREAM_KEY", stream},
                            {"CONSUMER_GROUP_NAME", group},
                            {"GROUP_START_ID", "0"},
                            {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"},
                            {"OUTPUT_DIRECTORY", output.string()},
                            {"OUTPUT_FSYNC", "false"},
                            {"BATCH_SIZE", "50"},
                            {"POLL_TIMEOUT_MS", "200"},
                            {"RETRY_DELAY_MS", "100"},
                            {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "500"},
                            {"PENDING_MESSAGE_MIN_IDLE_MS", "1500"},
                            {"SHUTDOWN_GRACE_PERIOD_MS", "3000"},
                            {"LOG_LEVEL", "info"}},
                           dir.path() / "logs", {"chaos-1", "chaos-2", "chaos-doomed"});
  ChaosPublisher publisher(redis, stream, scale, 2 * 1024 * 1024);
  ChaosReport report;
  run_chaos(redis, publisher, instances, {"chaos-1", "chaos-2"}, "chaos-doomed", scale, report);
  const bool drained = wait_drained(redis, stream, group, 180s);
  instances.stop_all();

  check_deliveries(
      redis, stream, group,
      [&](const std::string& id) {
        return std::filesystem::exists(output / relative_file_of(id, OutputLayout::Flat)) ? 1u : 0u;
      },
      report);
  // What the publisher had acknowledged and the failovers dropped (never replicated): the one loss
  // a failover may cause; printed so that the run shows its size.
  std::cout << report.summary() << "\nacknowledged by a primary: " << publisher.written()
            << ", in the stream at the end: " << report.published << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
}

}  // namespace
}  // namespace connector
