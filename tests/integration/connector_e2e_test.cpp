// End to end: the real connector binary between a real redis-server and the LOCAL_FILE output.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using testing::ConnectorProcess;
using testing::count_json_files;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::TempDir;
using testing::wait_until;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<std::string> add_entries(RedisServer& redis, const std::string& stream, int count,
                                     int first = 0) {
  std::vector<std::string> ids;
  for (int i = first; i < first + count; ++i) {
    const std::string n = std::to_string(i);
    RedisReply reply =
        redis.command({"XADD", stream, "*", "seq", n, "device", "dev-" + std::to_string(i % 7)});
    EXPECT_TRUE(reply.is_string()) << reply.describe();
    ids.emplace_back(reply.str());
  }
  return ids;
}

long long pending_count(RedisServer& redis, const std::string& stream, const std::string& group) {
  RedisReply reply = redis.command({"XPENDING", stream, group});
  if (!reply.is_array() || reply.size() < 1) return -1;
  return reply[0].integer();
}

std::map<std::string, std::string> base_settings(const RedisServer& redis,
                                                 const std::filesystem::path& output) {
  return {{"REDIS_URL", redis.url()},
          {"STREAM_KEY", "e2e:stream"},
          {"CONSUMER_GROUP_NAME", "e2e-group"},
          {"CONSUMER_NAME", "e2e-consumer"},
          {"GROUP_START_ID", "0"},
          {"OUTPUT_ADAPTER_TYPE", "LOCAL_FILE"},
          {"OUTPUT_DIRECTORY", output.string()},
          {"POLL_TIMEOUT_MS", "200"},
          {"RETRY_DELAY_MS", "100"},
          {"SHUTDOWN_GRACE_PERIOD_MS", "3000"}};
}

TEST(connector_e2e_test, every_published_entry_becomes_one_file_and_nothing_stays_pending) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  const auto ids = add_entries(redis, "e2e:stream", 500);
  ConnectorProcess connector(base_settings(redis, output), dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 500; }, 30s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  EXPECT_EQ(pending_count(redis, "e2e:stream", "e2e-group"), 0);
  for (std::size_t i = 0; i < ids.size(); i += 97) {
    const auto file = nlohmann::json::parse(read_file(output / (ids[i] + ".json")));
    EXPECT_EQ(file["id"], ids[i]);
    EXPECT_EQ(file["stream"], "e2e:stream");
    EXPECT_EQ(file["body"]["seq"], std::to_string(i));
    EXPECT_EQ(file["properties"]["redis-id"], ids[i]);
  }
  // pino lines: every log line is a JSON object with the numeric level and msg.
  std::istringstream lines(connector.log());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    const auto json = nlohmann::json::parse(line);
    EXPECT_TRUE(json["level"].is_number_integer());
    EXPECT_TRUE(json["msg"].is_string());
    EXPECT_TRUE(json["time"].is_number_integer());
    ++parsed;
  }
  EXPECT_GT(parsed, 2);
}

// One process, three streams: each read by its own pipeline into a directory of its own (entry IDs are
// unique only within a stream), one failing stream stopping none of the others, and every figure of
// /metrics and the stats line carrying its stream.
TEST(connector_e2e_test, several_streams_each_arrive_in_their_own_directory_with_their_own_figures) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  const std::vector<std::string> streams = {"multi:{0}", "multi:{1}", "multi/2"};
  const std::vector<int> counts = {300, 200, 100};
  std::vector<std::vector<std::string>> ids;
  for (std::size_t i = 0; i < streams.size(); ++i) ids.push_back(add_entries(redis, streams[i], counts[i]));
  auto settings = base_settings(redis, output);
  settings["STREAM_KEY"] = "multi:{0},multi:{1}, multi/2";
  settings["STATS_INTERVAL_MS"] = "200";
  const std::uint16_t http_port = testing::free_port();
  settings["HTTP_ADDRESS"] = "127.0.0.1:" + std::to_string(http_port);
  ConnectorProcess connector(settings, dir.path());
  const std::vector<std::filesystem::path> directories = {output / "multi:{0}", output / "multi:{1}",
                                                          output / "multi%2F2"};
  ASSERT_TRUE(wait_until(
      [&] {
        for (std::size_t i = 0; i < streams.size(); ++i) {
          if (count_json_files(directories[i]) != static_cast<std::size_t>(counts[i])) return false;
        }
        return true;
      },
      30s))
      << connector.log();
  httplib::Client client("127.0.0.1", http_port);
  std::string metrics;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto answer = client.Get("/metrics");
        metrics = answer ? answer->body : "";
        // Files land before their XACK: every stream's acked figure is awaited, not just one of them.
        for (std::size_t i = 0; i < streams.size(); ++i) {
          const auto line = "connector_entries_acked_total{stream=\"" + streams[i] + "\"} " +
                            std::to_string(counts[i]) + "\n";
          if (metrics.find(line) == std::string::npos) return false;
        }
        return true;
      },
      10s))
      << metrics;
  ASSERT_TRUE(wait_until(
      [&] {
        const auto answer = client.Get("/readyz");
        return answer && answer->status == 200;
      },
      15s));
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  for (std::size_t i = 0; i < streams.size(); ++i) {
    EXPECT_EQ(pending_count(redis, streams[i], "e2e-group"), 0) << streams[i];
    const auto file = nlohmann::json::parse(read_file(directories[i] / (ids[i].back() + ".json")));
    EXPECT_EQ(file["stream"], streams[i]);
    EXPECT_EQ(file["properties"]["redis-stream"], streams[i]);
    bool stats_line = false;
    std::istringstream lines(connector.log());
    for (std::string line; std::getline(lines, line);) {
      const auto json = nlohmann::json::parse(line);
      stats_line |= json["msg"] == "stats" && json["stream"] == streams[i];
    }
    EXPECT_TRUE(stats_line) << streams[i] << "\n" << connector.log();
  }
  EXPECT_FALSE(std::filesystem::exists(output / "multi")) << "a '/' in a key makes no subdirectory";
}

TEST(connector_e2e_test, entries_written_while_running_arrive_without_waiting_for_the_poll_timeout) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  auto settings = base_settings(redis, output);
  settings["POLL_TIMEOUT_MS"] = "30000";
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(
      wait_until([&] { return connector.log().find("connector_started") != std::string::npos; }, 20s));
  add_entries(redis, "e2e:stream", 3);
  // Well before the 30 s poll timeout: the blocked read returns as soon as entries arrive.
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 3; }, 15s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
}

TEST(connector_e2e_test, own_pending_entries_are_delivered_first_after_a_restart) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  const auto ids = add_entries(redis, "e2e:stream", 50);
  // A previous run of the same consumer read 20 entries and died before acking them.
  redis.command({"XGROUP", "CREATE", "e2e:stream", "e2e-group", "0"});
  RedisReply read = redis.command(
      {"XREADGROUP", "GROUP", "e2e-group", "e2e-consumer", "COUNT", "20", "STREAMS", "e2e:stream", ">"});
  ASSERT_TRUE(read.is_array());
  ASSERT_EQ(pending_count(redis, "e2e:stream", "e2e-group"), 20);
  ConnectorProcess connector(base_settings(redis, output), dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 50; }, 30s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  EXPECT_EQ(pending_count(redis, "e2e:stream", "e2e-group"), 0) << connector.log();
  EXPECT_TRUE(std::filesystem::exists(output / (ids[0] + ".json")));
}

TEST(connector_e2e_test, shutdown_mid_stream_acks_only_what_was_written) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  const auto ids = add_entries(redis, "e2e:stream", 20000);
  auto settings = base_settings(redis, output);
  settings["BATCH_SIZE"] = "50";
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) >= 200; }, 30s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  // At-least-once: whatever is no longer pending was acked, so its file must exist.
  RedisReply pending = redis.command({"XPENDING", "e2e:stream", "e2e-group", "-", "+", "100000"});
  std::set<std::string> still_pending;
  for (std::size_t i = 0; i < pending.size(); ++i) still_pending.emplace(pending[i][0].str());
  RedisReply info = redis.command({"XINFO", "GROUPS", "e2e:stream"});
  std::string last_delivered;
  for (std::size_t i = 0; i + 1 < info[0].size(); i += 2) {
    if (info[0][i].str() == "last-delivered-id") last_delivered = std::string(info[0][i + 1].str());
  }
  std::size_t acked = 0;
  for (const auto& id : ids) {
    if (id == last_delivered) {
      ++acked;
      EXPECT_TRUE(still_pending.count(id) || std::filesystem::exists(output / (id + ".json"))) << id;
      break;
    }
    if (still_pending.count(id)) continue;
    ++acked;
    ASSERT_TRUE(std::filesystem::exists(output / (id + ".json"))) << "acked without a file: " << id;
  }
  EXPECT_GE(acked, 200u);
  EXPECT_LT(acked, ids.size()) << "the run should have been interrupted mid-stream";
}

TEST(connector_e2e_test, a_second_signal_exits_at_once) {
  RedisServer redis;
  TempDir dir;
  add_entries(redis, "e2e:stream", 10);
  auto settings = base_settings(redis, dir.path() / "out");
  settings["SHUTDOWN_GRACE_PERIOD_MS"] = "60000";
  // The forced exit deliberately joins no thread; under ThreadSanitizer a thread that has just finished
  // would be reported as leaked (exit status 66). Data races are still reported.
  const char* tsan_options = std::getenv("TSAN_OPTIONS");
  settings["TSAN_OPTIONS"] = std::string(tsan_options ? tsan_options : "") + ":report_thread_leaks=0";
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(dir.path() / "out") == 10; }, 20s));
  connector.process().signal(SIGINT);
  connector.process().signal(SIGINT);
  const int status = connector.process().wait(10s);
  EXPECT_TRUE(status == 0 || status == 1) << status << "\n" << connector.log();
}

TEST(connector_e2e_test, redis_down_at_startup_exits_3_naming_the_address) {
  TempDir dir;
  const auto port = testing::free_port();
  ConnectorProcess connector({{"REDIS_URL", "redis://127.0.0.1:" + std::to_string(port)},
                              {"STREAM_KEY", "s"},
                              {"CONSUMER_GROUP_NAME", "g"},
                              {"RETRY_DELAY_MS", "100"},
                              {"OUTPUT_DIRECTORY", (dir.path() / "out").string()}},
                             dir.path());
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  EXPECT_NE(connector.log().find("Failed to connect to Redis"), std::string::npos) << connector.log();
  EXPECT_NE(connector.log().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST(connector_e2e_test, invalid_configuration_exits_2_with_every_problem) {
  TempDir dir;
  ConnectorProcess connector({{"REDIS_URL", "http://nope"}, {"BATCH_SIZE", "0"}, {"STREAM_KEY", ""}},
                             dir.path());
  EXPECT_EQ(connector.process().wait(20s), 2) << connector.log();
  const std::string log = connector.log();
  EXPECT_NE(log.find("REDIS_URL"), std::string::npos) << log;
  EXPECT_NE(log.find("BATCH_SIZE"), std::string::npos) << log;
  EXPECT_NE(log.find("STREAM_KEY"), std::string::npos) << log;
  EXPECT_NE(log.find("CONSUMER_GROUP_NAME"), std::string::npos) << log;
}

TEST(connector_e2e_test, a_stream_key_that_is_not_a_stream_exits_2) {
  RedisServer redis;
  TempDir dir;
  redis.command({"SET", "e2e:stream", "a string"});
  ConnectorProcess connector(base_settings(redis, dir.path() / "out"), dir.path());
  EXPECT_EQ(connector.process().wait(20s), 2) << connector.log();
  EXPECT_NE(connector.log().find("not a stream"), std::string::npos) << connector.log();
}

TEST(connector_e2e_test, survives_a_redis_restart_and_delivers_everything) {
  RedisServerOptions options;
  options.aof_always = true;
  RedisServer redis(options);
  TempDir dir;
  const auto output = dir.path() / "out";
  add_entries(redis, "e2e:stream", 100);
  ConnectorProcess connector(base_settings(redis, output), dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 100; }, 30s)) << connector.log();
  redis.restart();
  add_entries(redis, "e2e:stream", 100, 100);
  // Delivered and acked while running: the acker may be in its reconnect back-off when the files
  // appear, and a stop only waits SHUTDOWN_GRACE_PERIOD_MS for it (what is left is redelivered later).
  ASSERT_TRUE(wait_until(
      [&] { return count_json_files(output) == 200 && pending_count(redis, "e2e:stream", "e2e-group") == 0; },
      60s))
      << connector.log();
  EXPECT_TRUE(connector.process().running());
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  EXPECT_NE(connector.log().find("redis_reconnect"), std::string::npos);
}

TEST(connector_e2e_test, tls_with_verification_and_an_acl_user) {
  RedisServerOptions options;
  options.tls = true;
  options.acl_user = "connector";
  options.acl_password = "s3cret-Pa55";
  RedisServer redis(options);
  TempDir dir;
  const auto output = dir.path() / "out";
  add_entries(redis, "e2e:stream", 20);
  auto settings = base_settings(redis, output);
  settings["REDIS_URL"] = "rediss://connector:s3cret-Pa55@localhost:" + std::to_string(redis.port());
  settings["REDIS_TLS_CA_FILE"] = redis.certificates().ca_cert.string();
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 20; }, 30s)) << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  EXPECT_EQ(connector.log().find("s3cret-Pa55"), std::string::npos) << "the password reached a log line";
}

TEST(connector_e2e_test, tls_with_an_unknown_ca_fails_at_startup_with_a_clear_reason) {
  RedisServerOptions options;
  options.tls = true;
  RedisServer redis(options);
  TempDir dir;
  auto settings = base_settings(redis, dir.path() / "out");
  settings["REDIS_URL"] = "rediss://localhost:" + std::to_string(redis.port());
  settings["REDIS_TLS_CA_FILE"] = redis.certificates().other_ca_cert.string();
  ConnectorProcess connector(settings, dir.path());
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  EXPECT_NE(connector.log().find("certificate"), std::string::npos) << connector.log();
}

TEST(connector_e2e_test, an_entry_without_the_body_field_goes_to_the_dead_letter_stream) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  redis.command({"XADD", "e2e:stream", "*", "payload", "ok-1"});
  RedisReply bad = redis.command({"XADD", "e2e:stream", "*", "other", "no body here"});
  redis.command({"XADD", "e2e:stream", "*", "payload", "ok-2"});
  auto settings = base_settings(redis, output);
  settings["MESSAGE_BODY_FIELD"] = "payload";
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 2; }, 30s)) << connector.log();
  ASSERT_TRUE(wait_until(
      [&] {
        return redis.command({"XLEN", "e2e:stream:dead-letter"}).integer() == 1;
      },
      10s));
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  RedisReply dead = redis.command({"XRANGE", "e2e:stream:dead-letter", "-", "+"});
  std::map<std::string, std::string> fields;
  for (std::size_t i = 0; i + 1 < dead[0][1].size(); i += 2) {
    fields[std::string(dead[0][1][i].str())] = std::string(dead[0][1][i + 1].str());
  }
  EXPECT_EQ(fields["other"], "no body here");
  EXPECT_EQ(fields["dlq-original-id"], bad.str());
  EXPECT_EQ(fields["dlq-stream"], "e2e:stream");
  EXPECT_NE(fields["dlq-reason"].find("payload"), std::string::npos);
  EXPECT_EQ(fields["dlq-deliveries"], "1");
  EXPECT_FALSE(fields["dlq-time"].empty());
  EXPECT_EQ(pending_count(redis, "e2e:stream", "e2e-group"), 0);
  EXPECT_NE(connector.log().find("entry_dead_lettered"), std::string::npos);
}

TEST(connector_e2e_test, a_dead_consumers_pending_entries_are_claimed) {
  RedisServer redis;
  TempDir dir;
  const auto output = dir.path() / "out";
  add_entries(redis, "e2e:stream", 30);
  redis.command({"XGROUP", "CREATE", "e2e:stream", "e2e-group", "0"});
  redis.command(
      {"XREADGROUP", "GROUP", "e2e-group", "crashed-instance", "COUNT", "30", "STREAMS", "e2e:stream", ">"});
  auto settings = base_settings(redis, output);
  settings["PENDING_MESSAGE_CLAIM_INTERVAL_MS"] = "200";
  settings["PENDING_MESSAGE_MIN_IDLE_MS"] = "300";
  ConnectorProcess connector(settings, dir.path());
  ASSERT_TRUE(wait_until([&] { return count_json_files(output) == 30; }, 30s)) << connector.log();
  ASSERT_TRUE(wait_until([&] { return pending_count(redis, "e2e:stream", "e2e-group") == 0; }, 10s));
  EXPECT_EQ(connector.interrupt_and_wait(), 0);
  EXPECT_NE(connector.log().find("entries_claimed"), std::string::npos);
}

}  // namespace
}  // namespace connector
