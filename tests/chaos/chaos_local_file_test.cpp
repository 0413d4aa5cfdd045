// Zero loss with the LOCAL_FILE output while connectors are SIGKILLed, Redis restarts, and one instance
// dies for good. Sized for CI by default; scripts/soak.sh runs it longer (ChaosScale).
#include <gtest/gtest.h>

#include <iostream>

#include "sinks/output_directory.hpp"
#include "support/chaos_harness.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

// `layout` and `writers` are OUTPUT_LAYOUT and OUTPUT_WRITERS.
void run_local_file_chaos(OutputLayout layout, const std::string& writers) {
  const ChaosScale scale = ChaosScale::from_environment();
  RedisServerOptions redis_options;
  redis_options.aof_always = true;
  RedisServer redis(redis_options);
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::string stream = "chaos {stream} with spaces";  // keys with spaces and braces must work
  const std::string group = "chaos-group";
  ChaosInstances instances({{"REDIS_URL", redis.url()},
                            {"STREAM_KEY", stream},
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
                            {"LOG_LEVEL", "info"}},
                           dir.path() / "logs", {"chaos-1", "chaos-2", "chaos-doomed"});
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
  std::cout << report.summary() << std::endl;
  EXPECT_TRUE(drained);
  EXPECT_GE(report.published, scale.entries);
  EXPECT_EQ(report.missing, 0u) << report.summary();
  EXPECT_EQ(report.still_pending, 0);
  EXPECT_GE(report.kills, scale.min_kills);
  EXPECT_GE(report.redis_restarts, scale.min_redis_restarts);
}

TEST(chaos_test, local_file_output_loses_nothing_under_kills_and_redis_restarts) {
  run_local_file_chaos(OutputLayout::Flat, "2");
}

TEST(chaos_test, local_file_hourly_layout_with_several_writers_loses_nothing_under_kills_and_redis_restarts) {
  run_local_file_chaos(OutputLayout::Hourly, "3");
}

}  // namespace
}  // namespace connector
