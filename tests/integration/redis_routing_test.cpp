// RedisConnection with a router: the node is asked for at every connect(), and the TLS name verified
// follows REDIS_TLS_SERVER_NAME, else the route's announced hostname, else its host (a real TLS server).
#include <gtest/gtest.h>

#include <atomic>

#include "common/errors.hpp"
#include "redis/redis_connection.hpp"
#include "support/redis_server.hpp"

namespace connector {
namespace {
using testing::RedisServer;
using testing::RedisServerOptions;

/// Routes to a fixed node and counts how often it was asked.
class FixedRouter final : public RedisRouter {
 public:
  explicit FixedRouter(RedisRoute route) : route_(std::move(route)) {}
  RedisRoute route() const override {
    ++asked;
    return route_;
  }
  mutable std::atomic<int> asked{0};

 private:
  RedisRoute route_;
};

RedisConnectionOptions routed(const RedisServer& server, RedisRoute route, std::string configured_name = {}) {
  RedisConnectionOptions options = server.connection_options();
  options.endpoint.host = "configured.invalid";  // never connected to: the router decides
  options.endpoint.port = 1;
  options.tls.server_name = std::move(configured_name);
  options.router = std::make_shared<FixedRouter>(std::move(route));
  return options;
}

TEST(redis_routing_test, every_connect_asks_the_router_and_connects_where_it_says) {
  RedisServer server;
  RedisConnectionOptions options = routed(server, {"127.0.0.1", server.port(), {}});
  const auto& router = static_cast<const FixedRouter&>(*options.router);
  RedisConnection connection(options);
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
  EXPECT_EQ(connection.endpoint().port, server.port());
  connection.connect();
  EXPECT_EQ(router.asked, 2);
}

TEST(redis_routing_test, the_tls_name_is_the_configured_one_else_the_announced_hostname_else_the_host) {
  RedisServer server(RedisServerOptions{.tls = true});
  {  // the announced hostname is verified, not the address: a wrong one fails
    RedisConnection connection(routed(server, {"127.0.0.1", server.port(), "wrong.invalid"}));
    try {
      connection.connect();
      ADD_FAILURE() << "connected although the announced hostname is not in the certificate";
    } catch (const RedisConnectionError& error) {
      EXPECT_NE(std::string(error.what()).find("certificate verify failed"), std::string::npos) << error.what();
    }
  }
  {  // REDIS_TLS_SERVER_NAME wins over the announced hostname
    RedisConnection connection(routed(server, {"127.0.0.1", server.port(), "wrong.invalid"}, "localhost"));
    EXPECT_NO_THROW(connection.connect());
  }
  {  // neither: the host as given
    RedisConnection connection(routed(server, {"127.0.0.1", server.port(), {}}));
    EXPECT_NO_THROW(connection.connect());
  }
}

}  // namespace
}  // namespace connector
