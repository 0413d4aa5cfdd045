// Startup faults of the real connector binary: signals while it waits, a second instance with the
// same CONSUMER_NAME, a failed start.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <sstream>

#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/redis_server.hpp"
#include "support/tcp_proxy.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ConnectorProcess;
using testing::RedisServer;
using testing::SilentListener;
using testing::TempDir;
using testing::wait_until;

TEST(connector_startup_test, sigterm_while_redis_does_not_answer_ends_the_process_at_once) {
  SilentListener silent;
  TempDir dir;
  ConnectorProcess connector({{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(silent.port())},
                              {"STREAM_KEY", "s"},
                              {"CONSUMER_GROUP_NAME", "g"},
                              {"OUTPUT_DIRECTORY", (dir.path() / "out").string()}},
                             dir.path());
  // Connected means main() has blocked the signals: SIGTERM now reaches the connector's own handling.
  ASSERT_TRUE(wait_until([&] { return silent.has_client(); }, 20s)) << connector.log();
  connector.process().signal(SIGTERM);
  // Before, the signal waited for three 10 s connection attempts (exit 3 after ~34 s).
  EXPECT_EQ(connector.process().wait(8s), 0) << connector.log();
  const std::string log = connector.log();
  EXPECT_NE(log.find(R"("msg":"shutdown_requested")"), std::string::npos) << log;
  EXPECT_NE(log.find(R"("phase":"startup")"), std::string::npos) << log;
  EXPECT_EQ(log.find("Failed to connect"), std::string::npos) << log;
}

std::map<std::string, std::string> settings_for(const RedisServer& redis, const TempDir& dir,
                                                const std::string& consumer) {
  return {{"REDIS_URL", redis.url()},
          {"STREAM_KEY", "startup:stream"},
          {"CONSUMER_GROUP_NAME", "startup-group"},
          {"CONSUMER_NAME", consumer},
          {"OUTPUT_DIRECTORY", (dir.path() / "out").string()},
          {"POLL_TIMEOUT_MS", "200"}};
}

/// The log's event names (pino's "msg"), in order.
std::vector<std::string> events(const std::string& log) {
  std::vector<std::string> names;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const auto start = line.find(R"("msg":")");
    if (start == std::string::npos) continue;
    const auto name = start + 7;
    names.push_back(line.substr(name, line.find('"', name) - name));
  }
  return names;
}

TEST(connector_startup_test, a_failed_start_is_logged_once_and_ends_with_connector_stopped) {
  RedisServer redis;
  TempDir dir;
  redis.command({"SET", "startup:stream", "a string"});
  const auto failed_start = [&](std::map<std::string, std::string> settings, int status) {
    const auto common = settings_for(redis, dir, "failed-start");
    settings.insert(common.begin(), common.end());  // keeps the settings given
    ConnectorProcess connector(settings, dir.path());
    EXPECT_EQ(connector.process().wait(30s), status) << connector.log();
    const auto names = events(connector.log());
    EXPECT_EQ(std::count(names.begin(), names.end(), "startup_failed"), 1) << connector.log();
    ASSERT_FALSE(names.empty());
    EXPECT_EQ(names.back(), "connector_stopped") << connector.log();
    const std::string last_line =
        connector.log().substr(connector.log().rfind(R"("msg":"connector_stopped")"));
    EXPECT_NE(last_line.find(R"("exit_status":)" + std::to_string(status)), std::string::npos) << last_line;
  };
  // Before the pipeline starts: the HTTP port is taken (by Redis).
  failed_start({{"HTTP_ADDRESS", "127.0.0.1:" + std::to_string(redis.port())}, {"STREAM_KEY", "other"}}, 3);
  // While the pipeline starts: STREAM_KEY holds a string.
  failed_start({{"HTTP_ADDRESS", "off"}}, 2);
}

TEST(connector_startup_test, a_second_instance_with_the_same_consumer_name_is_refused_with_exit_2) {
  RedisServer redis;
  TempDir first_dir;
  TempDir second_dir;
  ConnectorProcess first(settings_for(redis, first_dir, "copy-pasted"), first_dir.path());
  ASSERT_TRUE(first.wait_started()) << first.log();

  ConnectorProcess second(settings_for(redis, second_dir, "copy-pasted"), second_dir.path());
  EXPECT_EQ(second.process().wait(30s), 2) << second.log();
  const std::string log = second.log();
  EXPECT_NE(log.find("CONSUMER_NAME"), std::string::npos) << log;
  EXPECT_NE(log.find("\\\"copy-pasted\\\" is already used by another live client"), std::string::npos) << log;
  EXPECT_EQ(log.find("connector_started"), std::string::npos) << log;
  EXPECT_TRUE(first.process().running());

  // Another name is fine, and so is the same name once the first instance is gone.
  TempDir third_dir;
  ConnectorProcess third(settings_for(redis, third_dir, "another-name"), third_dir.path());
  EXPECT_TRUE(third.wait_started()) << third.log();
  EXPECT_EQ(first.interrupt_and_wait(), 0) << first.log();
  TempDir again_dir;
  ConnectorProcess again(settings_for(redis, again_dir, "copy-pasted"), again_dir.path());
  EXPECT_TRUE(again.wait_started()) << again.log();
  EXPECT_EQ(again.interrupt_and_wait(), 0) << again.log();
  EXPECT_EQ(third.interrupt_and_wait(), 0) << third.log();
}

TEST(connector_startup_test, a_restart_right_after_a_sigkill_keeps_its_name) {
  RedisServer redis;
  TempDir dir;
  ConnectorProcess killed(settings_for(redis, dir, "same-pod"), dir.path());
  ASSERT_TRUE(killed.wait_started()) << killed.log();
  killed.process().kill();
  ConnectorProcess restarted(settings_for(redis, dir, "same-pod"), dir.path());
  EXPECT_TRUE(restarted.wait_started()) << restarted.log();
  EXPECT_EQ(restarted.interrupt_and_wait(), 0) << restarted.log();
}

}  // namespace
}  // namespace connector
