// Zero loss with the LOCAL_FILE output while connectors are SIGKILLed, Redis restarts (or, on a cluster,
// fails over), and one instance dies for good. Sized for CI by default; scripts/soak.sh runs it longer (ChaosScale).
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <string>

#include "config/host_port.hpp"
#include "sinks/output_directory.hpp"
#include "support/chaos_harness.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

// `where` holds the settings that name `redis` (REDIS_URL...); `layout` and `writers` are OUTPUT_LAYOUT
// and OUTPUT_WRITERS; `may_drop` is the share of acknowledged writes Redis itself may lose (a failover's).
void run_local_file_chaos(const ChaosRedis& redis, std::map<std::string, std::string> where,
                          const std::string& stream, OutputLayout layout, const std::string& writers,
                          double may_drop = 0) {
  const ChaosScale scale = ChaosScale::from_environment();
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::string group = "chaos-group";
  where.insert({{"STREAM_KEY", stream},
                {"CONSUMER_GROUP_NAME", group},
                {"GROUP_START_ID", "0"},
                {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"},
                {"OUTPUT_DIRECTORY", output.string()},
                {"BATCH_SIZE", "50"},
                {"POLL_TIMEOUT_MS", "200"},
                {"RETRY_DELAY_MS", "100"},
                {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "500"},
                {"PENDING_MESSAGE_MIN_IDLE_MS", "1500"},
                {"SHUTDOWN_GRACE_PERIOD_MS", "3000"},
                {"OUTPUT_LAYOUT", layout == OutputLayout::Hourly ? "hourly" : "flat"},
                {"OUTPUT_WRITERS", writers},
                {"LOG_LEVEL", "info"}});
  ChaosInstances instances(where, dir.path() / "logs", {"chaos-1", "chaos-2", "chaos-doomed"});
  ChaosPublisher publisher(redis, stream, scale, 2 * 1024 * 1024);
  ChaosReport report;
  run_chaos(redis, publisher, instances, {"chaos-1", "chaos-2"}, "chaos-doomed", scale, report);
  const bool drained = wait_drained(redis, stream, group, 180s);
  instances.stop_all();

  // A file per entry ID: redeliveries overwrite it, so duplicates are not visible here.
  check_deliveries(
      redis, stream, group,
      [&](const std::string& id) {
        return std::filesystem::exists(output / relative_file_of(id, layout)) ? 1u : 0u;
      },
      report);
  // On a cluster, what a primary acknowledged but had not replicated when it was killed is gone from the
  // stream (the one loss a failover may cause, README "Delivery guarantees"): printed to show its size.
  std::cout << report.summary() << "\nacknowledged by Redis: " << publisher.written()
            << ", in the stream at the end: " << report.published << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(static_cast<double>(report.published), static_cast<double>(scale.entries) * (1 - may_drop));
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
}

/// One redis-server with an AOF written at every command: a restart loses nothing.
void run_local_file_chaos(OutputLayout layout, const std::string& writers) {
  RedisServerOptions redis_options;
  redis_options.aof_always = true;
  RedisServer redis(redis_options);
  // Keys with spaces and braces must work.
  run_local_file_chaos(redis, {{"REDIS_URL", redis.url()}}, "chaos {stream} with spaces", layout, writers);
}

TEST(chaos_test, local_file_output_loses_nothing_under_kills_and_redis_restarts) {
  run_local_file_chaos(OutputLayout::Flat, "2");
}

TEST(chaos_test, local_file_hourly_layout_with_several_writers_loses_nothing_under_kills_and_redis_restarts) {
  run_local_file_chaos(OutputLayout::Hourly, "3");
}

// A real Redis Cluster: the stream's primary is SIGKILLed, its replica promoted and the old node brought
// back as a replica, while connectors are killed and restarted.
/// Every node but REDIS_URL's, as a deployment lists them: an instance restarted while REDIS_URL's node
/// is the one killed must still find the slot map.
std::string cluster_nodes(const RedisCluster& cluster) {
  std::string nodes;
  for (std::size_t node = 1; node < cluster.size(); ++node) {
    nodes += (nodes.empty() ? "" : ",") + join_host_port("127.0.0.1", cluster.port(node));
  }
  return nodes;
}

TEST(chaos_test, local_file_output_loses_nothing_under_kills_and_cluster_failovers) {
  RedisCluster cluster;
  const std::string stream = "{chaos}:stream";  // its dead-letter stream shares the slot
  run_local_file_chaos(ChaosRedis(cluster, stream),
                       {{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(cluster.port(0))},
                        {"REDIS_CLUSTER", "true"},
                        {"REDIS_CLUSTER_NODES", cluster_nodes(cluster)}},
                       stream, OutputLayout::Flat, "2", 0.01);
}

}  // namespace
}  // namespace connector
