// End to end with Microsoft Entra ID: the connector binary gets short-lived tokens from the token service
// stand-in, sends to fake-eventhubs with put-token type jwt, and authenticates to Redis with them.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "support/connector_process.hpp"
#include "support/fake_eventhubs_server.hpp"
#include "support/fake_token_service.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using namespace std::chrono_literals;
using namespace connector::testing;

constexpr const char* kStream = "entra:stream";
constexpr const char* kGroup = "entra-group";

long long pending(RedisServer& redis) {
  RedisReply reply = redis.command({"XPENDING", kStream, kGroup});
  return reply.is_array() ? reply[0].integer() : -1;
}

/// Adds an entry every 20 ms on its own thread until destroyed; counts what it added.
class SteadyPublisher {
 public:
  explicit SteadyPublisher(RedisServer& redis) {
    thread_ = std::thread([this, options = redis.connection_options()] {
      RedisConnection connection(options);
      connection.connect();
      while (!stop_) {
        connection.command({"XADD", kStream, "*", "seq", std::to_string(added_.load())});
        ++added_;
        std::this_thread::sleep_for(20ms);
      }
    });
  }
  ~SteadyPublisher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int added() const { return added_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> added_{0};
  std::thread thread_;
};

class ConnectorEntraTest : public ::testing::Test {
 protected:
  ConnectorEntraTest() : tokens_(token_options()) {}

  FakeTokenServiceOptions token_options() {
    FakeTokenServiceOptions options;
    options.assertion_file = dir_.path() / "azure-identity-token";
    write_assertion("service-account-token-1");
    options.lifetime = 5s;  // short, so that a 20 s run crosses many refreshes
    return options;
  }

  void write_assertion(const std::string& text) {
    // Written aside and renamed, as the kubelet does, so a reader never sees half a file.
    std::ofstream(dir_.path() / "token.tmp") << text;
    std::filesystem::rename(dir_.path() / "token.tmp", dir_.path() / "azure-identity-token");
  }

  /// Workload identity settings against the stand-in, without the Event Hubs or Redis part.
  std::map<std::string, std::string> entra_settings(const std::string& redis_url) const {
    return {{"REDIS_URL", redis_url},
            {"STREAM_KEY", kStream},
            {"CONSUMER_GROUP_NAME", kGroup},
            {"CONSUMER_NAME", "entra-consumer"},
            {"GROUP_START_ID", "0"},
            {"AZURE_TENANT_ID", tokens_.options().tenant_id},
            {"AZURE_CLIENT_ID", tokens_.options().client_id},
            {"AZURE_FEDERATED_TOKEN_FILE", tokens_.options().assertion_file.string()},
            {"AZURE_AUTHORITY_HOST", tokens_.authority()},
            {"AZURE_IDENTITY_TLS_CA_FILE", tokens_.certificates().ca_cert.string()},
            {"ENTRA_TOKEN_REFRESH_MARGIN_MS", "2000"},
            {"POLL_TIMEOUT_MS", "500"},
            {"RETRY_DELAY_MS", "100"},
            {"PENDING_MESSAGE_CLAIM_INTERVAL_MS", "1000"},
            {"SHUTDOWN_GRACE_PERIOD_MS", "3000"}};
  }

  /// fake-eventhubs over TLS, taking the stand-in's tokens.
  FakeEventHubsOptions jwt_hub_options() const {
    FakeEventHubsOptions options;
    options.tls = true;
    options.extra_args = {"--jwt-key", tokens_.options().signing_key};
    return options;
  }

  /// entra_settings() sending to `hub` by namespace, without a connection string.
  std::map<std::string, std::string> eventhubs_settings(const RedisServer& redis,
                                                        const FakeEventHubsServer& hub) const {
    auto settings = entra_settings(redis.url());
    settings["OUTPUT_ADAPTER_TYPE"] = "EVENT_HUBS";
    settings["EVENT_HUB_FULLY_QUALIFIED_NAMESPACE"] = "localhost:" + std::to_string(hub.port());
    settings["EVENT_HUB_NAME"] = hub.options().hub;
    settings["EVENT_HUBS_TLS_CA_FILE"] = hub.certificates()->ca_cert.string();
    return settings;
  }

  /// Runs the connector until it exits by itself; returns its exit status and its log.
  std::pair<int, std::string> run_to_exit(const std::map<std::string, std::string>& settings) {
    ConnectorProcess connector(settings, dir_.path() / "connector");
    const int status = connector.process().wait(30s);
    return {status, connector.log()};
  }

  /// No token, assertion or secret of this test in `log`.
  void expect_no_secrets(const std::string& log) const {
    EXPECT_EQ(log.find("service-account-token"), std::string::npos) << "an assertion reached the log";
    EXPECT_EQ(log.find(tokens_.options().client_secret), std::string::npos)
        << "the client secret reached the log";
    for (const auto& issued : tokens_.issued()) {
      ASSERT_EQ(log.find(issued.token.substr(issued.token.rfind('.'))), std::string::npos)
          << "an access token reached the log";
    }
  }

  TempDir dir_;
  FakeTokenService tokens_;
};

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(ConnectorEntraTest, event_hubs_with_five_second_tokens_loses_and_duplicates_nothing_across_refreshes) {
  RedisServer redis;
  FakeEventHubsServer hub(jwt_hub_options());
  const auto settings = eventhubs_settings(redis, hub);

  ConnectorProcess connector(settings, dir_.path() / "connector");
  ASSERT_TRUE(connector.wait_started()) << connector.log();
  SteadyPublisher publisher(redis);
  // About 20 s: four token lifetimes, eight refreshes; the kubelet rotates the assertion halfway.
  ASSERT_TRUE(wait_until([&] { return tokens_.issued().size() >= 4; }, 30s)) << connector.log();
  write_assertion("service-account-token-2");
  ASSERT_TRUE(wait_until([&] { return tokens_.issued().size() >= 8; }, 30s)) << connector.log();
  publisher.stop();
  const int added = publisher.added();
  ASSERT_TRUE(wait_until(
      [&] { return hub.events().size() >= static_cast<std::size_t>(added) && pending(redis) == 0; }, 30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();

  std::set<std::string> ids;
  for (const auto& event : hub.events()) ids.insert(event.properties.at("redis-id"));
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(added)) << "an entry was lost";
  EXPECT_EQ(hub.events().size(), static_cast<std::size_t>(added)) << "an entry was sent twice";
  EXPECT_TRUE(tokens_.request_errors().empty()) << tokens_.request_errors().front();
  const std::string log = connector.log();
  EXPECT_EQ(count(log, "eventhubs_reconnect"), 0u) << log;
  EXPECT_EQ(count(hub.log(), "link_token_expired"), 0u) << hub.log();
  EXPECT_GE(count(hub.log(), "\"status\":202"), 4u) << "the renewed tokens were not put";
  EXPECT_NE(log.find("\"msg\":\"credential_selected\""), std::string::npos) << log;
  expect_no_secrets(log);
}

TEST_F(ConnectorEntraTest, fake_event_hubs_detaches_a_link_whose_jwt_expired) {
  // The stand-in's half of the bargain: without renewal the link goes (so the test above can fail).
  FakeEventHubsServer hub(jwt_hub_options());
  RedisServer redis;
  ConnectorProcess connector(eventhubs_settings(redis, hub), dir_.path() / "connector");
  ASSERT_TRUE(connector.wait_started()) << connector.log();
  tokens_.set_fault(TokenFault::ServerError);  // no more tokens: the put one expires
  // Either the broker's timer detaches the link, or a renewal with the expired token is refused first.
  EXPECT_TRUE(wait_until(
      [&] { return count(hub.log(), "link_token_expired") + count(hub.log(), "token expired") > 0; }, 20s))
      << hub.log();
  EXPECT_TRUE(wait_until([&] { return count(connector.log(), "entra_token_refresh_failed") > 0; }, 20s));
  tokens_.set_fault(TokenFault::None);
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
}

/// Plays Azure Cache for Redis's part: a connection of the connector whose last AUTH is older than the
/// token lifetime is closed (CLIENT KILL) and counted. AUTH times come from MONITOR (redis-cli, whose
/// output shows `"auth" "(redacted)" …` with the client's address).
class LapsedAuthEnforcer {
 public:
  LapsedAuthEnforcer(RedisServer& redis, const TempDir& dir, std::string user, std::string password,
                     std::string client_name, std::chrono::seconds lifetime)
      : redis_(redis),
        client_name_(std::move(client_name)),
        lifetime_(lifetime),
        log_(dir.path() / "monitor.log") {
    monitor_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/redis-cli", "-p", std::to_string(redis.port()), "--user", user,
                                 "--pass", password, "--no-auth-warning", "monitor"},
        log_);
    EXPECT_TRUE(wait_until([&] { return read_log().find("OK") != std::string::npos; }, 10s));
  }

  /// Closes the connections whose AUTH lapsed; returns how many it closed in all.
  int enforce() {
    std::map<std::string, double> last_auth;  // address -> server time of its last AUTH
    std::istringstream lines(read_log());
    for (std::string line; std::getline(lines, line);) {
      const auto open = line.find(" [");
      const auto close = line.find("] ");
      if (open == std::string::npos || close == std::string::npos) continue;
      std::string command = line.substr(close + 2, 6);
      for (auto& c : command) c = static_cast<char>(std::tolower(c));
      if (command != "\"auth\"") continue;
      const std::string address =
          line.substr(line.find(' ', open + 2) + 1, close - line.find(' ', open + 2) - 1);
      last_auth[address] = std::stod(line.substr(0, open));
    }
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::istringstream clients(std::string(redis_.command({"CLIENT", "LIST"}).str()));
    for (std::string client; std::getline(clients, client);) {
      if (client.find(" name=" + client_name_) == std::string::npos) continue;
      const auto at = client.find("addr=") + 5;
      const std::string address = client.substr(at, client.find(' ', at) - at);
      const auto seen = last_auth.find(address);
      // A connection made before the first MONITOR line was read has not been seen yet: judge it next time.
      if (seen == last_auth.end() || now - seen->second <= lifetime_.count()) continue;
      redis_.command({"CLIENT", "KILL", "ADDR", address});
      ++killed_;
    }
    return killed_;
  }

  /// Closes every connection of the connector now; returns how many.
  int kill_all() {
    int killed = 0;
    std::istringstream clients(std::string(redis_.command({"CLIENT", "LIST"}).str()));
    for (std::string client; std::getline(clients, client);) {
      if (client.find(" name=" + client_name_) == std::string::npos) continue;
      const auto at = client.find("id=") + 3;
      redis_.command({"CLIENT", "KILL", "ID", client.substr(at, client.find(' ', at) - at)});
      ++killed;
    }
    return killed;
  }

 private:
  std::string read_log() const {
    std::ifstream file(log_);
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }

  RedisServer& redis_;
  std::string client_name_;
  std::chrono::seconds lifetime_;
  std::filesystem::path log_;
  std::unique_ptr<ChildProcess> monitor_;
  int killed_ = 0;
};

TEST_F(ConnectorEntraTest, redis_connections_authenticate_again_before_each_token_lapses) {
  const std::string object_id = tokens_.options().object_id;
  RedisServer redis(RedisServerOptions{.acl_user = object_id, .acl_password = "bootstrap-Hx7"});
  redis.command({"ACL", "SETUSER", "default", "off"});  // only the object ID may log in
  // The cache in step with the token service: a new token becomes a password, expired ones are removed.
  std::mutex rotation_mutex;
  std::vector<IssuedToken> live;
  tokens_.set_on_issue([&](const IssuedToken& token) {
    if (token.resource != "https://redis.azure.com") return;
    std::lock_guard lock(rotation_mutex);
    redis.command({"ACL", "SETUSER", object_id, ">" + token.token});
    const long long now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    std::erase_if(live, [&](const IssuedToken& old) {
      if (old.expires_on > now) return false;
      redis.command({"ACL", "SETUSER", object_id, "<" + old.token});
      return true;
    });
    live.push_back(token);
  });
  // 8-second tokens: a refresh halfway leaves 4 s for the token request and the next command of each
  // connection even on a loaded machine (sanitizer builds); the run still crosses six refreshes.
  tokens_.set_lifetime(8s);
  LapsedAuthEnforcer enforcer(redis, dir_, object_id, "bootstrap-Hx7", "entra-consumer", 8s);

  auto settings = entra_settings("redis://127.0.0.1:" + std::to_string(redis.port()));
  settings["REDIS_AUTH"] = "entra";  // user name: the token's oid claim
  settings["OUTPUT_ADAPTER_TYPE"] = "LOCAL_FILE";
  settings["OUTPUT_DIRECTORY"] = (dir_.path() / "out").string();
  settings["OUTPUT_FSYNC"] = "false";
  ConnectorProcess connector(settings, dir_.path() / "connector");
  ASSERT_TRUE(connector.wait_started()) << connector.log();
  SteadyPublisher publisher(redis);
  const auto redis_tokens = [&] {
    std::lock_guard lock(rotation_mutex);
    return live.size();
  };
  std::size_t issued_before_kill = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        enforcer.enforce();
        issued_before_kill = tokens_.issued().size();
        return issued_before_kill >= 3;
      },
      30s))
      << connector.log();
  // A killed connection comes back with the newest token (the first ones are no longer accepted).
  EXPECT_GE(enforcer.kill_all(), 1);
  ASSERT_TRUE(wait_until(
      [&] {
        enforcer.enforce();
        return tokens_.issued().size() >= issued_before_kill + 3;
      },
      30s))
      << connector.log();
  publisher.stop();
  const int added = publisher.added();
  ASSERT_TRUE(wait_until(
      [&] {
        enforcer.enforce();
        return count_json_files(dir_.path() / "out") == static_cast<std::size_t>(added) &&
               pending(redis) == 0;
      },
      30s))
      << connector.log();
  EXPECT_EQ(connector.interrupt_and_wait(), 0) << connector.log();
  EXPECT_EQ(enforcer.enforce(), 0) << "a connection kept a lapsed token\n" << connector.log();
  EXPECT_GE(redis_tokens(), 1u);
  EXPECT_TRUE(tokens_.request_errors().empty()) << tokens_.request_errors().front();
  const std::string log = connector.log();
  EXPECT_GE(count(log, "redis_reconnect"), 1u) << "the CLIENT KILL was not noticed";
  EXPECT_EQ(count(log, "authentication failed"), 0u) << log;
  expect_no_secrets(log);
}

TEST_F(ConnectorEntraTest, an_unreachable_token_endpoint_at_startup_exits_3_naming_flow_and_endpoint) {
  RedisServer redis;
  auto settings = entra_settings(redis.url());
  settings["REDIS_AUTH"] = "entra";
  const std::string endpoint = "https://localhost:" + std::to_string(free_port());
  settings["AZURE_AUTHORITY_HOST"] = endpoint + "/";
  const auto [status, log] = run_to_exit(settings);
  EXPECT_EQ(status, 3) << log;
  EXPECT_NE(log.find("WorkloadIdentityCredential: no answer from the token endpoint " + endpoint),
            std::string::npos)
      << log;
  expect_no_secrets(log);
}

TEST_F(ConnectorEntraTest, an_aadsts_error_at_startup_exits_3_with_the_code_and_no_secret) {
  RedisServer redis;
  auto settings = entra_settings(redis.url());
  settings["REDIS_AUTH"] = "entra";
  settings["AZURE_FEDERATED_TOKEN_FILE"] = "";
  settings["AZURE_CLIENT_SECRET"] = tokens_.options().client_secret;
  tokens_.set_fault(TokenFault::AadstsError);
  const auto [status, log] = run_to_exit(settings);
  EXPECT_EQ(status, 3) << log;
  EXPECT_NE(log.find("ClientSecretCredential"), std::string::npos) << log;
  EXPECT_NE(log.find("AADSTS700016"), std::string::npos) << log;
  expect_no_secrets(log);
}

TEST_F(ConnectorEntraTest, missing_pieces_are_configuration_errors_reported_together) {
  RedisServer redis;
  auto settings = entra_settings(redis.url());
  settings["REDIS_AUTH"] = "entra";
  settings["AZURE_CLIENT_ID"] = "";
  settings["AZURE_FEDERATED_TOKEN_FILE"] = (dir_.path() / "no-such-token").string();
  const auto [status, log] = run_to_exit(settings);
  EXPECT_EQ(status, 2) << log;
  EXPECT_NE(log.find("AZURE_TENANT_ID: set without AZURE_CLIENT_ID"), std::string::npos) << log;
  EXPECT_NE(log.find("no-such-token"), std::string::npos) << log;
  EXPECT_EQ(tokens_.requests(), 0u);
}

}  // namespace
}  // namespace connector
