// Finding the primary through real redis-sentinels: one primary, two replicas, three sentinels.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "common/errors.hpp"
#include "redis/redis_connection.hpp"
#include "redis/sentinel.hpp"
#include "support/child_process.hpp"
#include "support/redis_sentinel_setup.hpp"
#include "support/redis_server.hpp"

namespace connector {

// Readable failure messages for EXPECT_EQ on addresses (found by argument-dependent lookup).
void PrintTo(const PrimaryAddress& address, std::ostream* out) { *out << address.describe(); }

namespace {

using namespace std::chrono_literals;
using testing::RedisSentinelSetup;

RedisConnectionOptions sentinel_connection() {
  RedisConnectionOptions options;
  options.connect_timeout = 2s;
  options.command_timeout = 5s;
  return options;
}

SentinelSettings settings_for(const std::vector<std::uint16_t>& ports, std::string master) {
  SentinelSettings settings;
  for (const auto port : ports) settings.sentinels.push_back(HostPort{"127.0.0.1", port});
  settings.master_name = std::move(master);
  settings.connection = sentinel_connection();
  return settings;
}

PrimaryAddress address_of(testing::RedisServer& server) { return {"127.0.0.1", server.port()}; }

template <typename Error>
std::string error_of(const SentinelSettings& settings) {
  try {
    const auto primary = find_primary(settings);
    return "no error: " + primary.describe();
  } catch (const ConfigurationError& error) {
    if constexpr (std::is_same_v<Error, ConfigurationError>) return error.problems().at(0);
    return std::string("ConfigurationError: ") + error.what();
  } catch (const RedisConnectionError& error) {
    if constexpr (std::is_same_v<Error, RedisConnectionError>) return error.what();
    return std::string("RedisConnectionError: ") + error.what();
  }
}

class RedisSentinelTest : public ::testing::Test {
 protected:
  // One deployment per test program (ctest runs each test in its own process).
  static void SetUpTestSuite() {
    const auto start = std::chrono::steady_clock::now();
    setup_ = std::make_unique<RedisSentinelSetup>();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::cout << "[ fixture  ] Redis Sentinel (1 primary, 2 replicas, 3 sentinels) ready in " << took.count()
              << " ms\n";
  }
  static void TearDownTestSuite() { setup_.reset(); }

  static SentinelSettings settings(std::string master = RedisSentinelSetup::master_name()) {
    return settings_for(setup_->sentinel_ports(), std::move(master));
  }

  static inline std::unique_ptr<RedisSentinelSetup> setup_;
};

TEST_F(RedisSentinelTest, finds_the_primary_and_only_the_primary_passes_the_role_check) {
  const std::size_t primary = setup_->primary();
  EXPECT_EQ(find_primary(settings()), address_of(setup_->server(primary)));

  RedisConnection to_primary(setup_->server(primary).connection_options());
  to_primary.connect();
  EXPECT_NO_THROW(require_primary_role(to_primary));
  const std::size_t replica = (primary + 1) % setup_->server_count();
  RedisConnection to_replica(setup_->server(replica).connection_options());
  to_replica.connect();
  try {
    require_primary_role(to_replica);
    FAIL() << "a replica passed the role check";
  } catch (const RedisConnectionError& error) {
    EXPECT_EQ(std::string(error.what()), "Redis at " + to_replica.endpoint().describe() +
                                             " is a slave, not the primary (demoted by a failover?): ask the "
                                             "sentinels again");
  }
  const RedisReply refused = to_replica.command({"SET", "k", "v"});
  EXPECT_TRUE(is_readonly_error(refused.str())) << refused.describe();
}

TEST_F(RedisSentinelTest, an_unknown_master_name_is_a_configuration_error_naming_it) {
  const auto ports = setup_->sentinel_ports();
  EXPECT_EQ(error_of<ConfigurationError>(settings("no-such-master")),
            "No sentinel monitors the Redis master 'no-such-master': check REDIS_SENTINEL_MASTER (127.0.0.1:" +
                std::to_string(ports[0]) + ": knows no master of that name; 127.0.0.1:" + std::to_string(ports[1]) +
                ": knows no master of that name; 127.0.0.1:" + std::to_string(ports[2]) +
                ": knows no master of that name)");
}

TEST_F(RedisSentinelTest, the_majority_of_the_answers_wins_and_a_tie_is_reported) {
  // A second master name whose sentinels disagree: two name the primary, one names a replica.
  const std::size_t primary = setup_->primary();
  const std::size_t replica = (primary + 1) % setup_->server_count();
  const auto ports = setup_->sentinel_ports();
  const std::string primary_port = std::to_string(setup_->server(primary).port());
  const std::string replica_port = std::to_string(setup_->server(replica).port());
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const RedisReply reply = setup_->sentinel_command(
        i, {"SENTINEL", "MONITOR", "split", "127.0.0.1", i == 2 ? replica_port : primary_port, "1"});
    ASSERT_TRUE(reply.is_status()) << reply.describe();
  }

  EXPECT_EQ(find_primary(settings_for(ports, "split")), address_of(setup_->server(primary)));
  EXPECT_EQ(find_primary(settings_for({ports[2], ports[0], ports[1]}, "split")), address_of(setup_->server(primary)));
  EXPECT_EQ(error_of<RedisConnectionError>(settings_for({ports[0], ports[2]}, "split")),
            "The sentinels disagree about the primary of the Redis master 'split' (a failover in progress?): "
            "127.0.0.1:" + std::to_string(ports[0]) + ": names 127.0.0.1:" + primary_port + "; 127.0.0.1:" +
                std::to_string(ports[2]) + ": names 127.0.0.1:" + replica_port);

  for (std::size_t i = 0; i < ports.size(); ++i) setup_->sentinel_command(i, {"SENTINEL", "REMOVE", "split"});
}

TEST_F(RedisSentinelTest, after_the_primary_dies_the_promoted_replica_is_found_and_the_old_one_refuses_writes) {
  const std::size_t old_primary = setup_->primary();

  std::size_t promoted = setup_->kill_primary_and_wait_for_failover();

  // On a loaded machine a promotion can outlast the failover timeout, and the sentinels then promote
  // the other replica: what find_primary() must name is the primary the sentinels agree on by then.
  PrimaryAddress found;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        try {
          promoted = setup_->primary();
          found = find_primary(settings());
          return found == address_of(setup_->server(promoted));
        } catch (const std::runtime_error&) {
          return false;  // the sentinels are between two views
        }
      },
      30s))
      << found.describe();
  EXPECT_NE(promoted, old_primary);
  RedisConnection old_address(setup_->server(old_primary).connection_options());
  EXPECT_THROW(old_address.connect(), RedisConnectionError);

  // Back up, the old primary is turned into a replica by the sentinels and refuses writes.
  setup_->server(old_primary).start();
  std::string last;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        try {
          const RedisReply reply = setup_->server(old_primary).command({"SET", "k", "v"});
          last = reply.describe();
          return reply.is_error() && is_readonly_error(reply.str());
        } catch (const std::runtime_error& error) {
          // Reconfiguring it, the sentinels end its clients (CLIENT KILL TYPE normal): ask again.
          last = error.what();
          return false;
        }
      },
      60s))
      << last;
  // Asked again while the sentinels may still end its clients: what counts is the refusal for its role.
  std::string refusal;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        try {
          RedisConnection demoted(setup_->server(old_primary).connection_options());
          demoted.connect();
          require_primary_role(demoted);
          refusal = "it says it is the primary";
        } catch (const std::runtime_error& error) {
          refusal = error.what();
        }
        return refusal.find("not the primary") != std::string::npos;
      },
      30s))
      << refusal;
  // The primary the sentinels agree on now: on a slow machine they may have failed over once more.
  EXPECT_TRUE(testing::wait_until(
      [&] {
        try {
          promoted = setup_->primary();
          found = find_primary(settings());
        } catch (const std::runtime_error&) {
          return false;  // the sentinels are between two views
        }
        return found == address_of(setup_->server(promoted));
      },
      30s))
      << found.describe();
}

TEST(redis_sentinel_password_test, sentinels_get_their_own_password_and_a_wrong_one_is_never_shown) {
  const std::string password = "sentinel-secret-7";
  RedisSentinelSetup setup(password);
  SentinelSettings settings = settings_for(setup.sentinel_ports(), RedisSentinelSetup::master_name());
  settings.connection.endpoint.password = password;
  EXPECT_EQ(find_primary(settings), address_of(setup.server(setup.primary())));

  settings.connection.endpoint.password = "wrong-secret-9";
  const std::string wrong = error_of<RedisConnectionError>(settings);
  EXPECT_TRUE(wrong.starts_with("No sentinel could be reached to find the Redis master 'mymaster': 127.0.0.1:"))
      << wrong;
  EXPECT_EQ(wrong.find("wrong-secret-9"), std::string::npos) << wrong;
  EXPECT_EQ(wrong.find(password), std::string::npos) << wrong;

  settings.connection.endpoint.password.clear();
  const std::string none = error_of<RedisConnectionError>(settings);
  EXPECT_NE(none.find("NOAUTH"), std::string::npos) << none;
}

TEST(redis_sentinel_unreachable_test, unreachable_sentinels_are_each_named) {
  const std::uint16_t first = testing::free_port();
  const std::uint16_t second = testing::free_port();
  const std::string message = error_of<RedisConnectionError>(settings_for({first, second}, "mymaster"));
  EXPECT_TRUE(message.starts_with("No sentinel could be reached to find the Redis master 'mymaster': 127.0.0.1:" +
                                  std::to_string(first) + ": "))
      << message;
  EXPECT_NE(message.find("; 127.0.0.1:" + std::to_string(second) + ": "), std::string::npos) << message;
}

TEST(redis_sentinel_unreachable_test, a_server_that_is_not_a_sentinel_refuses_the_question) {
  testing::RedisServer server;
  const std::string message = error_of<ConfigurationError>(settings_for({server.port()}, "mymaster"));
  EXPECT_TRUE(message.starts_with("The sentinels asked for the Redis master 'mymaster' refused the question"))
      << message;
  EXPECT_NE(message.find("ERR unknown command 'SENTINEL'"), std::string::npos) << message;
}

TEST(redis_sentinel_unreachable_test, no_sentinel_is_a_configuration_error) {
  EXPECT_EQ(error_of<ConfigurationError>(settings_for({}, "mymaster")),
            "No sentinel to ask for the Redis master 'mymaster'");
}

}  // namespace
}  // namespace connector
