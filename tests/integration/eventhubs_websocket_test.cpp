// EVENT_HUBS_TRANSPORT=websockets end to end: the connector binary between a real redis-server and
// fake-eventhubs' WebSocket listener, directly or through a real HTTP proxy (tinyproxy).
#include <gtest/gtest.h>

#include <set>

#include "support/child_process.hpp"
#include "support/connector_process.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/redis_server.hpp"
#include "support/tinyproxy.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

constexpr const char* kStream = "ws:stream";
constexpr const char* kGroup = "ws-group";

/// `count` entries through redis-stream-publisher (pipelined XADDs).
void publish(const RedisServer& redis, int count, const std::filesystem::path& dir) {
  ChildProcess publisher({PUBLISHER_BINARY, "--count", std::to_string(count), "--rate", "0"},
                         dir / "publisher.log",
                         {{"REDIS_URL", redis.url()}, {"STREAM_KEY", kStream}, {"LOG_LEVEL", "warn"}}, dir);
  ASSERT_EQ(publisher.wait(60s), 0) << publisher.log();
}

long long pending(RedisServer& redis) {
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup});
  return reply.is_array() ? reply[0].integer() : -1;
}

std::size_t accepted(FakeEventHubsServer& hub) {
  std::size_t events = 0;
  for (const auto& [partition, n] : hub.counts().events_by_partition) events += n;
  return events;
}

std::map<std::string, std::string> websocket_settings(const RedisServer& redis,
                                                      const FakeEventHubsServer& hub) {
  std::map<std::string, std::string> settings = {
      {"REDIS_URL", redis.url()},
      {"STREAM_KEY", kStream},
      {"CONSUMER_GROUP_NAME", kGroup},
      {"CONSUMER_NAME", "ws-consumer"},
      {"GROUP_START_ID", "0"},
      {"OUTPUT_ADAPTER_TYPE", "EVENT_HUBS"},
      {"EVENT_HUBS_TRANSPORT", "websockets"},
      {"EVENT_HUB_CONNECTION_STRING", hub.websocket_connection_string()},
      {"POLL_TIMEOUT_MS", "200"},
      {"RETRY_DELAY_MS", "100"},
      {"SHUTDOWN_GRACE_PERIOD_MS", "3000"}};
  if (hub.certificates() != nullptr)
    settings["EVENT_HUBS_TLS_CA_FILE"] = hub.certificates()->ca_cert.string();
  return settings;
}

FakeEventHubsServer wss_hub() {
  FakeEventHubsOptions options;
  options.tls = true;
  options.websocket = true;
  return FakeEventHubsServer(options);
}

/// Starts the connector, waits until `count` entries arrived and none is pending, then stops it.
void delivers(RedisServer& redis, FakeEventHubsServer& hub, ConnectorProcess& connector, std::size_t count) {
  ASSERT_TRUE(wait_until([&] { return accepted(hub) >= count && pending(redis) == 0; }, 60s))
      << connector.log() << hub.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  EXPECT_EQ(accepted(hub), count);
}

TEST(eventhubs_websocket_test, ten_thousand_entries_arrive_over_wss_through_a_proxy) {
  RedisServer redis;
  FakeEventHubsServer hub = wss_hub();
  TinyProxy proxy({.connect_ports = {hub.websocket_port()}, .basic_auth = std::nullopt});
  const auto dir = hub.record_file().parent_path();
  publish(redis, 10000, dir);
  auto settings = websocket_settings(redis, hub);
  settings["HTTPS_PROXY"] = proxy.url();
  settings["BATCH_SIZE"] = "500";
  ConnectorProcess connector(settings, dir / "connector");
  delivers(redis, hub, connector, 10000);
  EXPECT_NE(proxy.log().find("CONNECT localhost:" + std::to_string(hub.websocket_port())), std::string::npos)
      << proxy.log();
  EXPECT_GE(hub.count_in_log("\"msg\":\"websocket_accepted\""), 1) << hub.log();
  EXPECT_NE(connector.log().find("via the proxy 127.0.0.1:" + std::to_string(proxy.port())),
            std::string::npos)
      << connector.log();
}

TEST(eventhubs_websocket_test, a_proxy_that_refuses_the_tunnel_ends_startup_with_status_3_naming_it) {
  RedisServer redis;
  FakeEventHubsServer hub = wss_hub();
  TinyProxy proxy({.connect_ports = {hub.port()}, .basic_auth = std::nullopt});  // not the WebSocket port
  auto settings = websocket_settings(redis, hub);
  settings["HTTPS_PROXY"] = proxy.url();
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  const std::string expected = "the proxy 127.0.0.1:" + std::to_string(proxy.port()) +
                               " refused CONNECT localhost:" + std::to_string(hub.websocket_port()) +
                               " (HTTP 403";
  EXPECT_NE(connector.log().find(expected), std::string::npos) << connector.log();
}

TEST(eventhubs_websocket_test, a_proxy_that_wants_credentials_gets_them_from_the_url_never_logged) {
  RedisServer redis;
  FakeEventHubsServer hub = wss_hub();
  const std::string password = "Pr0xy-Passw0rd";
  TinyProxy proxy({.connect_ports = {hub.websocket_port()}, .basic_auth = std::pair{"relay", password}});
  const auto dir = hub.record_file().parent_path();
  auto settings = websocket_settings(redis, hub);
  settings["HTTPS_PROXY"] = proxy.url();
  {
    ConnectorProcess without(settings, dir / "without");
    EXPECT_EQ(without.process().wait(60s), 3) << without.log();
    const std::string expected =
        "the proxy 127.0.0.1:" + std::to_string(proxy.port()) + " wants authentication (HTTP 407";
    EXPECT_NE(without.log().find(expected), std::string::npos) << without.log();
  }
  publish(redis, 100, dir);
  settings["https_proxy"] = "http://relay:" + password + "@127.0.0.1:" + std::to_string(proxy.port());
  settings.erase("HTTPS_PROXY");  // the lower-case name alone
  ConnectorProcess with(settings, dir / "with");
  delivers(redis, hub, with, 100);
  EXPECT_EQ(with.log().find(password), std::string::npos) << "the proxy's password reached the log";
}

TEST(eventhubs_websocket_test, no_proxy_naming_the_host_goes_direct) {
  RedisServer redis;
  FakeEventHubsServer hub = wss_hub();
  const auto dir = hub.record_file().parent_path();
  publish(redis, 100, dir);
  auto settings = websocket_settings(redis, hub);
  settings["HTTPS_PROXY"] = "http://127.0.0.1:" + std::to_string(free_port());  // nothing listens there
  settings["NO_PROXY"] = "example.com,.localhost,localhost";
  ConnectorProcess connector(settings, dir / "connector");
  delivers(redis, hub, connector, 100);
  EXPECT_EQ(connector.log().find("via the proxy"), std::string::npos) << connector.log();
}

TEST(eventhubs_websocket_test, the_emulator_connection_string_speaks_plain_ws) {
  RedisServer redis;
  FakeEventHubsOptions options;
  options.websocket = true;  // no TLS: the connection string says UseDevelopmentEmulator=true
  FakeEventHubsServer hub(options);
  const auto dir = hub.record_file().parent_path();
  publish(redis, 100, dir);
  ConnectorProcess connector(websocket_settings(redis, hub), dir / "connector");
  delivers(redis, hub, connector, 100);
  EXPECT_NE(connector.log().find("ws://localhost:" + std::to_string(hub.websocket_port()) +
                                 "/$servicebus/websocket"),
            std::string::npos)
      << connector.log();
  EXPECT_GE(hub.count_in_log("\"msg\":\"websocket_accepted\""), 1) << hub.log();
}

TEST(eventhubs_websocket_test, an_untrusted_certificate_ends_startup_with_status_3_naming_the_host) {
  RedisServer redis;
  FakeEventHubsServer hub = wss_hub();
  auto settings = websocket_settings(redis, hub);
  settings["EVENT_HUBS_TLS_CA_FILE"] = hub.certificates()->other_ca_cert.string();
  ConnectorProcess connector(settings, hub.record_file().parent_path() / "connector");
  EXPECT_EQ(connector.process().wait(60s), 3) << connector.log();
  const std::string expected = "the TLS handshake with localhost:" + std::to_string(hub.websocket_port()) +
                               " failed: certificate verify failed";
  EXPECT_NE(connector.log().find(expected), std::string::npos) << connector.log();
}

}  // namespace
}  // namespace connector
