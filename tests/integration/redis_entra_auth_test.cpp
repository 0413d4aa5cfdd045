// RedisConnection with Microsoft Entra ID tokens as passwords: every new token is sent with AUTH before
// the next command, on the same connection, without the caller noticing.
#include <gtest/gtest.h>

#include <mutex>

#include "common/errors.hpp"
#include "stand_ins/hs256_jwt.hpp"
#include "redis/redis_connection.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {

using testing::RedisServer;
using testing::RedisServerOptions;

constexpr const char* kObjectId = "7d1e9c4b-0000-4000-8000-00000000abcd";

/// Tokens the test hands out by hand.
class ManualTokens final : public AccessTokenProvider {
 public:
  TokenSnapshot current() const override {
    std::lock_guard lock(mutex_);
    return snapshot_;
  }
  /// A new token (an unsigned JWT carrying the object ID) of the next generation.
  std::string rotate() {
    std::lock_guard lock(mutex_);
    ++snapshot_.generation;
    snapshot_.token = sign_jwt_hs256({{"oid", kObjectId}, {"n", snapshot_.generation}}, "k");
    snapshot_.expires_on = std::chrono::system_clock::now() + std::chrono::minutes(5);
    return snapshot_.token;
  }

 private:
  mutable std::mutex mutex_;
  TokenSnapshot snapshot_;
};

class RedisEntraAuthTest : public ::testing::Test {
 protected:
  RedisEntraAuthTest() : server_(RedisServerOptions{.acl_user = kObjectId, .acl_password = "bootstrap-Qm1"}) {
    tokens_ = std::make_shared<ManualTokens>();
    allow(tokens_->rotate());
  }

  /// The user accepts `token` as a password (and only the bootstrap one besides, when `only`).
  void allow(const std::string& token, bool only = false) {
    if (only) admin({"ACL", "SETUSER", kObjectId, "resetpass", ">bootstrap-Qm1"});
    admin({"ACL", "SETUSER", kObjectId, ">" + token});
  }

  /// A command on a fresh connection of the test's own (which authenticates once itself).
  RedisReply admin(const std::vector<std::string_view>& argv) {
    ++admin_connections_;
    return server_.command(argv);
  }

  /// AUTH commands the server ran for connections other than the test's own.
  long long connector_auths() {
    const std::string stats(admin({"INFO", "commandstats"}).str());
    const auto at = stats.find("cmdstat_auth:calls=");
    return (at == std::string::npos ? 0 : std::stoll(stats.substr(at + 19))) - admin_connections_;
  }

  std::unique_ptr<RedisConnection> connect() {
    RedisConnectionOptions options = server_.connection_options();
    options.endpoint.username.clear();  // taken from the token's oid claim
    options.endpoint.password.clear();
    options.entra_tokens = tokens_;
    auto connection = std::make_unique<RedisConnection>(options);
    connection->connect();
    return connection;
  }

  RedisConnection* connect_once() {
    first_ = connect();
    return first_.get();
  }

  RedisServer server_;
  std::shared_ptr<ManualTokens> tokens_;
  std::unique_ptr<RedisConnection> first_;
  long long admin_connections_ = 0;
};

TEST_F(RedisEntraAuthTest, a_new_token_is_sent_before_the_next_command_and_only_once) {
  auto& connection = *connect_once();
  EXPECT_EQ(connection.command({"ACL", "WHOAMI"}).str(), kObjectId);
  const long long before = connector_auths();
  allow(tokens_->rotate(), true);  // the old token no longer works for new connections
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
  EXPECT_EQ(connector_auths(), before + 1) << "one AUTH per new token";
  // A new connection takes the newest token.
  auto second = connect();
  EXPECT_EQ(second->command({"ACL", "WHOAMI"}).str(), kObjectId);
}

TEST_F(RedisEntraAuthTest, pipelined_replies_skip_the_internal_auth) {
  auto& connection = *connect_once();
  allow(tokens_->rotate());
  connection.append({"SET", "k", "v"});
  connection.append({"GET", "k"});
  EXPECT_EQ(connection.pending_replies(), 2u);
  EXPECT_EQ(connection.read_reply().str(), "OK");
  EXPECT_EQ(connection.read_reply().str(), "v");
  EXPECT_EQ(connection.pending_replies(), 0u);
}

TEST_F(RedisEntraAuthTest, no_auth_inside_a_transaction) {
  auto& connection = *connect_once();
  connection.command({"MULTI"});
  allow(tokens_->rotate());
  EXPECT_EQ(connection.command({"SET", "k", "v"}).str(), "QUEUED");
  RedisReply exec = connection.command({"EXEC"});
  ASSERT_TRUE(exec.is_array());
  EXPECT_EQ(exec.size(), 1u) << "an AUTH was queued into the transaction";
  const long long before = connector_auths();
  connection.command({"PING"});
  EXPECT_EQ(connector_auths(), before + 1);
}

TEST_F(RedisEntraAuthTest, a_refused_token_closes_the_connection_with_a_message_without_it) {
  auto& connection = *connect_once();
  const std::string token = tokens_->rotate();  // not allowed on the server
  try {
    connection.command({"PING"});
    FAIL() << "the refused AUTH went unnoticed";
  } catch (const RedisConnectionError& e) {
    const std::string text = e.what();
    EXPECT_NE(text.find("re-authentication of user '" + std::string(kObjectId) + "'"), std::string::npos)
        << text;
    EXPECT_EQ(text.find(token), std::string::npos) << text;
  }
  EXPECT_FALSE(connection.connected());
  EXPECT_THROW(connect(), RedisConnectionError);
}

}  // namespace
}  // namespace connector
