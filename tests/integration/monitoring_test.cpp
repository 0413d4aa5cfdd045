// Monitoring end to end: a real Prometheus scrapes the connector binary between a real redis-server
// and fake-eventhubs; the probes follow Redis and the output; the lag poller against a real Redis.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "observability/group_monitor.hpp"
#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

constexpr const char* kStream = "monitoring:stream";
constexpr const char* kGroup = "monitoring-group";

struct HttpAnswer {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpAnswer http_get(std::uint16_t port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  const auto result = client.Get(path.c_str());
  return result ? HttpAnswer{result->status, result->body} : HttpAnswer{};
}

/// Runs a shell command line; true when it exits 0. Its output goes to `log` (shown on failure).
bool run_tool(const std::string& command, const std::filesystem::path& log) {
  ChildProcess tool({"/bin/sh", "-c", command}, log);
  return tool.wait(60s) == 0;
}

/// prometheus on a free port, scraping one target every second, with the project's alert rules loaded.
class PrometheusServer {
 public:
  explicit PrometheusServer(std::uint16_t target_port) : port_(free_port()) {
    const auto config = dir_.path() / "prometheus.yml";
    std::ofstream(config) << fmt::format(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "rule_files:\n  - {}/deploy/prometheus/alerts.yml\n"
        "scrape_configs:\n  - job_name: redis-eventhubs-connector\n"
        "    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
        SOURCE_DIR, target_port);
    process_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + config.string(),
                                 "--storage.tsdb.path=" + (dir_.path() / "data").string(),
                                 fmt::format("--web.listen-address=127.0.0.1:{}", port_), "--log.level=warn"},
        dir_.path() / "prometheus.log");
    if (!wait_until([&] { return http_get(port_, "/-/ready").status == 200; }, 60s)) {
      throw std::runtime_error("prometheus did not become ready: " + process_->log());
    }
  }
  /// The API's answer to an instant query (the whole JSON document), or null without one.
  nlohmann::json query(const std::string& expression) const {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(10);
    const auto result =
        client.Get("/api/v1/query", httplib::Params{{"query", expression}}, httplib::Headers{});
    if (!result) return nullptr;
    return nlohmann::json::parse(result->body, nullptr, false);
  }
  /// The value of the first sample of an instant query, or nullopt when there is none.
  std::optional<double> value(const std::string& expression) const {
    const auto answer = query(expression);
    if (!answer.is_object() || answer.value("status", "") != "success") return std::nullopt;
    const auto& result = answer["data"]["result"];
    if (!result.is_array() || result.empty()) return std::nullopt;
    return std::stod(result[0]["value"][1].get<std::string>());
  }
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

/// XADDs `count` entries in one MULTI/EXEC, so a blocked reader sees them all at once.
void publish(RedisServer& redis, int count) {
  RedisConnection connection(redis.connection_options());
  connection.connect();
  connection.append({"MULTI"});
  for (int i = 0; i < count; ++i) connection.append({"XADD", kStream, "*", "seq", std::to_string(i)});
  connection.append({"EXEC"});
  for (int i = 0; i < count + 2; ++i) connection.read_reply();
}

TEST(monitoring_test, prometheus_scrapes_counts_lag_and_probes_follow_redis_and_the_output) {
  RedisServer redis;
  FakeEventHubsServer hub;
  const std::uint16_t http_port = free_port();
  TempDir dir;
  ConnectorProcess connector({{"REDIS_URL", redis.url()},
                              {"STREAM_KEY", kStream},
                              {"CONSUMER_GROUP_NAME", kGroup},
                              {"CONSUMER_NAME", "monitored"},
                              {"GROUP_START_ID", "0"},
                              {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
                              {"EVENT_HUB_CONNECTION_STRING", hub.connection_string()},
                              {"BATCH_SIZE", "5"},
                              {"MAX_IN_FLIGHT_BATCHES", "1"},
                              {"POLL_TIMEOUT_MS", "200"},
                              {"RETRY_DELAY_MS", "100"},
                              {"STATS_INTERVAL_MS", "1000"},
                              {"HTTP_ADDRESS", fmt::format("127.0.0.1:{}", http_port)}},
                             dir.path());
  ASSERT_TRUE(connector.wait_started()) << connector.log();
  PrometheusServer prometheus(http_port);
  bool always_alive = true;
  const auto ready_becomes = [&](int status) {
    return wait_until(
        [&] {
          always_alive &= http_get(http_port, "/healthz").status == 200;
          return http_get(http_port, "/readyz").status == status;
        },
        60s);
  };
  ASSERT_TRUE(ready_becomes(200)) << http_get(http_port, "/readyz").body << connector.log();

  // Every entry published is acked, exactly, and the lag goes back to 0.
  constexpr int kFirst = 40;
  publish(redis, kFirst);
  EXPECT_TRUE(wait_until([&] { return prometheus.value("connector_entries_acked_total") == kFirst; }, 60s))
      << prometheus.value("connector_entries_acked_total").value_or(-1) << "\n"
      << connector.log();
  EXPECT_TRUE(wait_until([&] { return prometheus.value("connector_consumer_group_lag") == 0; }, 60s));
  EXPECT_EQ(prometheus.value("connector_consumer_group_lag_known"), 1);
  EXPECT_EQ(prometheus.value("connector_events_confirmed_total"), kFirst);
  EXPECT_EQ(prometheus.value("connector_output_up"), 1);
  EXPECT_EQ(prometheus.value("connector_redis_up"), 1);
  EXPECT_EQ(prometheus.value("connector_end_to_end_latency_seconds_count"), kFirst);
  EXPECT_GT(prometheus.value("connector_eventhubs_token_expires_in_seconds").value_or(0), 3000);
  EXPECT_EQ(prometheus.value("connector_build_info").value_or(0), 1);
  EXPECT_GT(prometheus.value("process_resident_memory_bytes").value_or(0), 1e6);

  // The exposition passes Prometheus's own linter, and shows no secret.
  const HttpAnswer exposition = http_get(http_port, "/metrics");
  ASSERT_EQ(exposition.status, 200);
  EXPECT_EQ(exposition.body.find(hub.options().key), std::string::npos);
  std::ofstream(dir.path() / "exposition.txt") << exposition.body;
  EXPECT_TRUE(run_tool("/usr/bin/promtool check metrics < " + (dir.path() / "exposition.txt").string(),
                       dir.path() / "promtool.log"))
      << std::ifstream(dir.path() / "promtool.log").rdbuf();

  // Every expression of the dashboard is valid PromQL for this Prometheus, and most have data.
  std::ifstream dashboard_file(std::string(SOURCE_DIR) + "/deploy/grafana/dashboard.json");
  const auto dashboard = nlohmann::json::parse(dashboard_file);
  std::size_t expressions = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      const std::string expression = target["expr"];
      const auto answer = prometheus.query(expression);
      EXPECT_EQ(answer.value("status", ""), "success") << expression << "\n" << answer.dump();
      ++expressions;
    }
  }
  EXPECT_GE(expressions, 15u);

  // Bad requests get 4xx, and change nothing.
  httplib::Client client("127.0.0.1", http_port);
  EXPECT_EQ(client.Post("/metrics")->status, 405);
  EXPECT_EQ(client.Delete("/readyz")->status, 405);
  EXPECT_EQ(client.Get("/nothing-here")->status, 404);
  EXPECT_EQ(client.Get(("/metrics?" + std::string(5000, 'a')).c_str())->status, 414);
  const auto huge_header = client.Get("/metrics", httplib::Headers{{"X-Filler", std::string(100000, 'x')}});
  EXPECT_TRUE(!huge_header || (huge_header->status >= 400 && huge_header->status < 500));

  // Clients that connect and say nothing hold the two workers only until the read timeout (5 s).
  std::vector<int> idle_sockets;
  for (int i = 0; i < 2; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(http_port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    idle_sockets.push_back(fd);
  }
  httplib::Client patient("127.0.0.1", http_port);
  patient.set_read_timeout(30);
  const auto answer = patient.Get("/healthz");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 200);
  for (const int fd : idle_sockets) ::close(fd);

  // The output stops: readiness fails with a reason, liveness holds, and the entries the connector
  // could not take (one batch of 5 is with the stopped output) show as lag.
  hub.stop();
  ASSERT_TRUE(ready_becomes(503)) << connector.log();
  EXPECT_NE(http_get(http_port, "/readyz").body.find("output not connected"), std::string::npos);
  constexpr int kSecond = 25;
  publish(redis, kSecond);
  EXPECT_TRUE(
      wait_until([&] { return prometheus.value("connector_consumer_group_lag") == kSecond - 5; }, 60s))
      << prometheus.value("connector_consumer_group_lag").value_or(-1) << "\n"
      << connector.log();
  EXPECT_TRUE(wait_until([&] { return prometheus.value("connector_consumer_group_pending") == 5; }, 60s));
  EXPECT_EQ(prometheus.value("connector_output_up"), 0);
  hub.restart();
  ASSERT_TRUE(ready_becomes(200)) << http_get(http_port, "/readyz").body << connector.log();
  EXPECT_TRUE(
      wait_until([&] { return prometheus.value("connector_entries_acked_total") == kFirst + kSecond; }, 60s))
      << connector.log();
  EXPECT_TRUE(wait_until([&] { return prometheus.value("connector_consumer_group_lag") == 0; }, 60s));

  // Redis stops: not ready, still alive; back when Redis is.
  redis.stop();
  ASSERT_TRUE(ready_becomes(503)) << connector.log();
  EXPECT_NE(http_get(http_port, "/readyz").body.find("Redis unreachable"), std::string::npos);
  redis.start();
  ASSERT_TRUE(ready_becomes(200)) << http_get(http_port, "/readyz").body << connector.log();
  EXPECT_TRUE(always_alive) << "/healthz answered something other than 200";

  EXPECT_NE(connector.log().find("\"msg\":\"stats\""), std::string::npos);
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

TEST(monitoring_test, group_monitor_reports_lag_pending_and_unknown_lag_from_redis) {
  RedisServer redis;
  GroupMonitor monitor(redis.connection_options(), kStream, kGroup, 50ms);
  monitor.start();
  const auto status_is = [&](auto predicate) {
    return wait_until([&] { return predicate(monitor.status()); }, 20s);
  };
  EXPECT_TRUE(status_is([](const GroupStatus& s) { return s.polled && s.redis_up && !s.group_exists; }));

  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i)
    ids.emplace_back(redis.command({"XADD", kStream, "*", "n", std::to_string(i)}).str());
  redis.command({"XGROUP", "CREATE", kStream, kGroup, "0"});
  EXPECT_TRUE(status_is([](const GroupStatus& s) { return s.group_exists && s.lag == 3 && s.pending == 0; }));
  EXPECT_FALSE(monitor.status().oldest_pending_age_seconds.has_value());

  redis.command({"XREADGROUP", "GROUP", kGroup, "c", "COUNT", "1", "STREAMS", kStream, ">"});
  EXPECT_TRUE(status_is([](const GroupStatus& s) {
    return s.lag == 2 && s.pending == 1 && s.oldest_pending_age_seconds && *s.oldest_pending_age_seconds >= 0;
  }));

  // An undelivered entry deleted: Redis can no longer count the lag, and neither do we.
  redis.command({"XDEL", kStream, ids[2]});
  EXPECT_TRUE(status_is([](const GroupStatus& s) { return s.group_exists && !s.lag && s.pending == 1; }));

  redis.stop();
  EXPECT_TRUE(status_is([](const GroupStatus& s) { return s.polled && !s.redis_up && !s.error.empty(); }));
  monitor.stop();
}

TEST(monitoring_test, a_taken_http_port_stops_the_connector_at_startup_with_status_3) {
  RedisServer redis;  // its port is taken, by Redis
  const std::string taken = fmt::format("127.0.0.1:{}", redis.port());
  TempDir dir;
  ConnectorProcess connector({{"REDIS_URL", redis.url()},
                              {"STREAM_KEY", kStream},
                              {"CONSUMER_GROUP_NAME", kGroup},
                              {"OUTPUT_ADAPTER_TYPE", "BLACKHOLE"},
                              {"HTTP_ADDRESS", taken}},
                             dir.path());
  EXPECT_EQ(connector.process().wait(30s), 3) << connector.log();
  EXPECT_NE(connector.log().find("cannot listen on HTTP_ADDRESS " + taken), std::string::npos)
      << connector.log();
}

TEST(monitoring_test, alert_rules_pass_promtool_check_and_unit_tests) {
  TempDir dir;
  const std::string rules = std::string(SOURCE_DIR) + "/deploy/prometheus/";
  EXPECT_TRUE(run_tool("/usr/bin/promtool check rules " + rules + "alerts.yml", dir.path() / "check.log"))
      << std::ifstream(dir.path() / "check.log").rdbuf();
  EXPECT_TRUE(
      run_tool("cd " + rules + " && /usr/bin/promtool test rules alerts_test.yml", dir.path() / "test.log"))
      << std::ifstream(dir.path() / "test.log").rdbuf();
}

}  // namespace
}  // namespace connector
