#include "redis/redis_connection.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include "common/errors.hpp"
#include "support/child_process.hpp"
#include "support/redis_server.hpp"
#include "support/tcp_proxy.hpp"

namespace connector {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;
using testing::RedisServerOptions;
using testing::SilentListener;
using Clock = std::chrono::steady_clock;

/// Connects and returns the RedisConnectionError message, failing the test when connect() succeeds.
std::string connect_error(RedisConnectionOptions options) {
  RedisConnection connection(std::move(options));
  try {
    connection.connect();
  } catch (const RedisConnectionError& error) {
    EXPECT_FALSE(connection.connected());
    return error.what();
  }
  ADD_FAILURE() << "connect() succeeded";
  return {};
}

/// connect_error() for a peer that never answers: the timeout must end the call. The deadline only
/// catches a hang; it is far above the timeouts used, so a loaded machine does not fail the test.
std::string connect_error_within_a_deadline(RedisConnectionOptions options) {
  auto attempt = std::async(std::launch::async, [options] { return connect_error(options); });
  if (attempt.wait_for(30s) != std::future_status::ready) {
    ADD_FAILURE() << "connect() did not give up";
    std::abort();  // the call would block this test's exit anyway
  }
  return attempt.get();
}

/// Waits until the server has a client blocked in a command (BLPOP, XREADGROUP BLOCK).
void wait_until_a_client_blocks(RedisServer& server) {
  const bool blocked = testing::wait_until(
      [&] {
        const RedisReply info = server.command({"INFO", "clients"});
        return std::string(info.str()).find("blocked_clients:1") != std::string::npos;
      },
      10s);
  ASSERT_TRUE(blocked) << "the command never blocked on the server";
}

void expect_ping(RedisConnectionOptions options) {
  RedisConnection connection(std::move(options));
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

TEST(redis_connection_test, ping_set_get) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  EXPECT_FALSE(connection.connected());
  connection.connect();
  EXPECT_TRUE(connection.connected());
  const auto pong = connection.command({"PING"});
  EXPECT_TRUE(pong.is_status());
  EXPECT_EQ(pong.str(), "PONG");
  EXPECT_EQ(connection.command({"SET", "k", "v"}).str(), "OK");
  const auto value = connection.command({"GET", "k"});
  EXPECT_TRUE(value.is_string());
  EXPECT_EQ(value.str(), "v");
  EXPECT_TRUE(connection.command({"GET", "missing"}).is_nil());
  EXPECT_EQ(connection.command({"INCR", "n"}).integer(), 1);
  EXPECT_EQ(connection.endpoint().port, server.port());
  connection.close();
  EXPECT_FALSE(connection.connected());
  EXPECT_THROW(connection.command({"PING"}), RedisConnectionError);
}

TEST(redis_connection_test, values_are_binary_safe) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  static constexpr char kKey[] = "k\0ey\r\n";
  static constexpr char kValue[] = "\0\x01\xff\r\n$3\r\n*";
  const std::string key(kKey, sizeof kKey - 1);
  const std::string value(kValue, sizeof kValue - 1);
  ASSERT_EQ(value.size(), 10u);
  EXPECT_EQ(connection.command({"SET", key, value}).str(), "OK");
  EXPECT_EQ(connection.command({"GET", key}).str(), value);
  EXPECT_EQ(connection.command({"STRLEN", key}).integer(), 10);
}

TEST(redis_connection_test, ten_megabyte_value_round_trip) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  std::string value(10 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>((i * 131) % 251);
  EXPECT_EQ(connection.command({"SET", "big", value}).str(), "OK");
  const auto reply = connection.command({"GET", "big"});
  ASSERT_TRUE(reply.is_string());
  EXPECT_EQ(reply.str().size(), value.size());
  EXPECT_TRUE(reply.str() == value);
}

TEST(redis_connection_test, pipelines_a_thousand_commands) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  for (int i = 0; i < 1000; ++i) {
    const std::string value = std::to_string(i);
    connection.append({"RPUSH", "list", value});
  }
  EXPECT_EQ(connection.pending_replies(), 1000u);
  EXPECT_THROW(connection.command({"PING"}), std::logic_error);  // would read the wrong reply
  for (int i = 0; i < 1000; ++i) {
    const auto reply = connection.read_reply();
    ASSERT_TRUE(reply.is_integer()) << reply.describe();
    EXPECT_EQ(reply.integer(), i + 1);
  }
  EXPECT_EQ(connection.pending_replies(), 0u);
  EXPECT_THROW(connection.read_reply(), std::logic_error);
  const auto list = connection.command({"LRANGE", "list", "0", "-1"});
  ASSERT_EQ(list.size(), 1000u);
  EXPECT_EQ(list[999].str(), "999");
}

TEST(redis_connection_test, stream_commands_and_error_replies) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  const auto created = connection.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  EXPECT_EQ(created.str(), "OK");
  const auto busy = connection.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  ASSERT_TRUE(busy.is_error());
  EXPECT_EQ(busy.str().rfind("BUSYGROUP", 0), 0u) << busy.str();
  EXPECT_TRUE(connection.connected());  // an error reply is not a connection failure
  const auto id = connection.command({"XADD", "s", "*", "field", "value"});
  ASSERT_TRUE(id.is_string());
  const auto read = connection.command({"XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "STREAMS", "s", ">"});
  ASSERT_EQ(read.size(), 1u) << read.describe();
  EXPECT_EQ(read[0][0].str(), "s");
  EXPECT_EQ(read[0][1][0][0].str(), id.str());
  EXPECT_EQ(read[0][1][0][1][1].str(), "value");
  EXPECT_EQ(connection.command({"XACK", "s", "g", id.str()}).integer(), 1);
  const auto nogroup = connection.command({"XREADGROUP", "GROUP", "nope", "c", "STREAMS", "s", ">"});
  EXPECT_TRUE(nogroup.is_error());
  EXPECT_EQ(nogroup.str().rfind("NOGROUP", 0), 0u) << nogroup.str();
}

TEST(redis_connection_test, blocking_read_uses_the_per_call_timeout) {
  RedisServer server;
  auto options = server.connection_options();
  options.command_timeout = 300ms;  // shorter than the BLOCK below: only the per-call timeout lets it finish
  RedisConnection connection(options);
  connection.connect();
  connection.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  const auto start = Clock::now();
  const auto reply =
      connection.command({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "700", "STREAMS", "s", ">"}, 700ms + 2s);
  EXPECT_TRUE(reply.is_nil()) << reply.describe();
  EXPECT_GE(Clock::now() - start, 650ms);
  EXPECT_TRUE(connection.connected());

  // Without the override the default command timeout applies: a timeout closes the connection.
  try {
    connection.command({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "2000", "STREAMS", "s", ">"});
    ADD_FAILURE() << "expected a timeout";
  } catch (const RedisConnectionError& error) {
    EXPECT_NE(std::string(error.what()).find("300 ms"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(connection.connected());
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

TEST(redis_connection_test, tls_with_the_right_ca) {
  RedisServer server(RedisServerOptions{.tls = true});
  RedisConnection connection(server.connection_options());
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
  // Big replies arrive as many 16 KB TLS records.
  const std::string value(3 * 1024 * 1024 + 7, 'x');
  EXPECT_EQ(connection.command({"SET", "big", value}).str(), "OK");
  EXPECT_EQ(connection.command({"GET", "big"}).str(), value);
}

TEST(redis_connection_test, tls_verifies_ip_address_san) {
  RedisServer server(RedisServerOptions{.tls = true});
  auto options = server.connection_options();
  options.endpoint.host = "127.0.0.1";  // the certificate holds IP:127.0.0.1
  expect_ping(options);
}

TEST(redis_connection_test, tls_with_the_wrong_ca_fails_verification) {
  RedisServer server(RedisServerOptions{.tls = true});
  auto options = server.connection_options();
  options.tls.ca_file = server.certificates().other_ca_cert.string();
  const auto message = connect_error(options);
  EXPECT_NE(message.find("certificate verify failed"), std::string::npos) << message;
  EXPECT_NE(message.find("rediss://localhost:" + std::to_string(server.port())), std::string::npos)
      << message;
  EXPECT_NE(message.find("REDIS_TLS_CA_FILE"), std::string::npos) << message;
}

TEST(redis_connection_test, tls_hostname_mismatch_fails) {
  RedisServer server(RedisServerOptions{.tls = true});
  auto options = server.connection_options();
  options.endpoint.host = "127.0.0.1";
  options.tls.server_name = "wrong.example";
  const auto message = connect_error(options);
  EXPECT_NE(message.find("hostname mismatch"), std::string::npos) << message;
  EXPECT_NE(message.find("wrong.example"), std::string::npos) << message;
}

TEST(redis_connection_test, tls_insecure_accepts_any_certificate) {
  RedisServer server(RedisServerOptions{.tls = true});
  auto options = server.connection_options();
  options.tls.ca_file = server.certificates().other_ca_cert.string();
  options.tls.server_name = "wrong.example";
  options.tls.insecure = true;
  expect_ping(options);
}

TEST(redis_connection_test, tls_client_certificate_authentication) {
  RedisServer server(RedisServerOptions{.tls = true, .tls_client_auth = true});
  const auto options = server.connection_options();
  ASSERT_FALSE(options.tls.cert_file.empty());
  expect_ping(options);

  auto without = options;
  without.tls.cert_file.clear();
  without.tls.key_file.clear();
  const auto message = connect_error(without);
  EXPECT_NE(message.find(server.url()), std::string::npos) << message;
  EXPECT_NE(message.find("REDIS_TLS_CERT_FILE"), std::string::npos) << message;
}

TEST(redis_connection_test, plain_client_on_a_tls_port_fails_clearly) {
  RedisServer server(RedisServerOptions{.tls = true});
  auto options = server.connection_options();
  options.endpoint.scheme = RedisEndpoint::Scheme::Tcp;
  options.connect_timeout = 2s;
  const auto message = connect_error(options);
  EXPECT_NE(message.find("redis://localhost:" + std::to_string(server.port())), std::string::npos) << message;
}

TEST(redis_connection_test, unix_socket) {
  RedisServer server(RedisServerOptions{.unix_socket = true});
  const auto options = server.unix_connection_options();
  RedisConnection connection(options);
  connection.connect();
  EXPECT_EQ(connection.command({"SET", "k", "via-unix"}).str(), "OK");
  EXPECT_EQ(server.command({"GET", "k"}).str(), "via-unix");

  auto missing = options;
  missing.endpoint.unix_path = server.unix_socket_path() + ".missing";
  const auto message = connect_error(missing);
  EXPECT_NE(message.find("unix://" + missing.endpoint.unix_path), std::string::npos) << message;
}

TEST(redis_connection_test, acl_user_and_wrong_password) {
  const std::string secret = "s3cr3t-Pa55";
  RedisServer server(RedisServerOptions{.acl_user = "alice", .acl_password = secret});
  RedisConnection connection(server.connection_options());
  connection.connect();
  EXPECT_EQ(connection.command({"ACL", "WHOAMI"}).str(), "alice");

  auto wrong = server.connection_options();
  wrong.endpoint.password = "not-the-" + secret;
  const auto message = connect_error(wrong);
  EXPECT_NE(message.find("authentication failed"), std::string::npos) << message;
  EXPECT_NE(message.find("'alice'"), std::string::npos) << message;
  EXPECT_NE(message.find("WRONGPASS"), std::string::npos) << message;
  EXPECT_NE(message.find("redis://127.0.0.1:" + std::to_string(server.port())), std::string::npos) << message;
  EXPECT_EQ(message.find(secret), std::string::npos) << message;
}

TEST(redis_connection_test, requirepass_password_only_auth) {
  const std::string secret = "only-a-password";
  RedisServer server(RedisServerOptions{.requirepass = secret});
  expect_ping(server.connection_options());

  auto none = server.connection_options();
  none.endpoint.password.clear();
  auto message = connect_error(none);
  EXPECT_NE(message.find("requires authentication"), std::string::npos) << message;

  auto wrong = server.connection_options();
  wrong.endpoint.password = secret + "x";
  message = connect_error(wrong);
  EXPECT_NE(message.find("authentication failed for user 'default'"), std::string::npos) << message;
  EXPECT_EQ(message.find(secret), std::string::npos) << message;
}

TEST(redis_connection_test, selects_the_database) {
  RedisServer server;
  auto options = server.connection_options();
  options.endpoint.database = 3;
  options.client_name = "connector-test";
  RedisConnection connection(options);
  connection.connect();
  EXPECT_EQ(connection.command({"SET", "only-in-3", "x"}).str(), "OK");
  EXPECT_EQ(connection.command({"CLIENT", "GETNAME"}).str(), "connector-test");
  EXPECT_TRUE(server.command({"GET", "only-in-3"}).is_nil());  // database 0

  options.endpoint.database = 99;
  const auto message = connect_error(options);
  EXPECT_NE(message.find("database 99"), std::string::npos) << message;
  EXPECT_NE(message.find("/99"), std::string::npos) << message;
}

TEST(redis_connection_test, connection_refused_names_the_address) {
  RedisConnectionOptions options;
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = testing::free_port();
  options.endpoint.password = "never-shown";
  const auto message = connect_error(options);
  EXPECT_NE(message.find("redis://127.0.0.1:" + std::to_string(options.endpoint.port) + "/0"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("connection refused"), std::string::npos) << message;
  EXPECT_EQ(message.find("never-shown"), std::string::npos) << message;
}

TEST(redis_connection_test, unresolvable_host_names_the_host) {
  RedisConnectionOptions options;
  options.endpoint.host = "no-such-host.invalid";
  const auto message = connect_error(options);
  EXPECT_NE(message.find("no-such-host.invalid"), std::string::npos) << message;
}

TEST(redis_connection_test, tls_handshake_that_never_answers_times_out) {
  SilentListener listener;
  RedisConnectionOptions options;
  options.endpoint.scheme = RedisEndpoint::Scheme::Tls;
  options.endpoint.host = "127.0.0.1";
  options.endpoint.port = listener.port();
  options.connect_timeout = 300ms;
  const auto start = Clock::now();
  const auto message = connect_error_within_a_deadline(options);
  EXPECT_GE(Clock::now() - start, 250ms);
  EXPECT_NE(message.find("300 ms"), std::string::npos) << message;
  EXPECT_NE(message.find("rediss://127.0.0.1:" + std::to_string(listener.port())), std::string::npos)
      << message;
}

TEST(redis_connection_test, server_that_never_answers_times_out) {
  SilentListener listener;
  RedisConnectionOptions options;
  options.endpoint.port = listener.port();
  options.connect_timeout = 300ms;
  const auto message = connect_error_within_a_deadline(options);
  EXPECT_NE(message.find("300 ms"), std::string::npos) << message;
}

TEST(redis_connection_test, server_killed_mid_command_then_reconnect) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  auto blocked = std::async(std::launch::async, [&] {
    try {
      connection.command({"BLPOP", "never", "5"}, 10s);
      return std::string("no error");
    } catch (const RedisConnectionError& error) {
      return std::string(error.what());
    }
  });
  wait_until_a_client_blocks(server);
  server.kill();
  ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready);
  const auto message = blocked.get();
  EXPECT_NE(message.find("lost"), std::string::npos) << message;
  EXPECT_FALSE(connection.connected());
  EXPECT_THROW(connection.connect(), RedisConnectionError);  // nothing listens now

  server.start();
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

/// The kind of the RedisConnectionError `call` throws on `connection`; fails the test when it returns.
template <class Call>
std::optional<RedisErrorKind> error_kind(RedisConnection& connection, Call&& call) {
  try {
    call(connection);
    ADD_FAILURE() << "the call succeeded";
  } catch (const RedisConnectionError& error) {
    EXPECT_FALSE(connection.connected()) << error.what();
    return error.kind();
  }
  return std::nullopt;
}

TEST(redis_connection_test, a_timeout_and_a_connection_the_server_closed_are_told_apart) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  const auto timeout = error_kind(connection, [](RedisConnection& c) {
    c.command({"BLPOP", "never", "5"}, 200ms);
  });
  EXPECT_EQ(timeout, RedisErrorKind::Timeout);

  connection.connect();
  const long long id = connection.command({"CLIENT", "ID"}).integer();
  RedisConnection other(server.connection_options());
  other.connect();
  ASSERT_EQ(other.command({"CLIENT", "KILL", "ID", std::to_string(id)}).integer(), 1);
  const auto closed = error_kind(connection, [](RedisConnection& c) { c.command({"PING"}); });
  EXPECT_EQ(closed, RedisErrorKind::Closed);

  // A call on a connection that is not open (closed by its owner) reads as Closed as well.
  connection.connect();
  const auto not_connected = error_kind(connection, [](RedisConnection& c) {
    c.close();
    c.command({"PING"});
  });
  EXPECT_EQ(not_connected, RedisErrorKind::Closed);
}

TEST(redis_connection_test, a_refused_handshake_is_its_own_kind) {
  RedisServer server(RedisServerOptions{.requirepass = "s3cret"});
  auto options = server.connection_options();
  options.endpoint.password.clear();
  RedisConnection connection(options);
  const auto refused = error_kind(connection, [](RedisConnection& c) { c.connect(); });
  EXPECT_EQ(refused, RedisErrorKind::Handshake);
}

// A write to a peer that is gone must raise an exception, never SIGPIPE (which would end this test).
void write_after_kill(RedisServer& server) {
  RedisConnection connection(server.connection_options());
  connection.connect();
  server.kill();
  const std::string value(4 * 1024 * 1024, 'p');
  EXPECT_THROW(
      {
        for (int i = 0; i < 3; ++i) {
          if (!connection.connected()) connection.connect();
          connection.command({"SET", "k", value});
        }
      },
      RedisConnectionError);
  EXPECT_FALSE(connection.connected());
}

TEST(redis_connection_test, write_to_a_dead_server_does_not_raise_sigpipe) {
  RedisServer server;
  write_after_kill(server);
}

TEST(redis_connection_test, tls_write_to_a_dead_server_does_not_raise_sigpipe) {
  RedisServer server(RedisServerOptions{.tls = true});
  write_after_kill(server);
}

TEST(redis_connection_test, interrupt_wakes_a_blocking_read) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  connection.command({"XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"});
  std::promise<void> about_to_block;
  auto blocked = std::async(std::launch::async, [&] {
    about_to_block.set_value();
    try {
      connection.command({"XREADGROUP", "GROUP", "g", "c", "BLOCK", "10000", "STREAMS", "s", ">"}, 12s);
      return std::string("no error");
    } catch (const RedisConnectionError& error) {
      return std::string(error.what());
    }
  });
  about_to_block.get_future().wait();
  wait_until_a_client_blocks(server);  // the command reached the server, so the call waits in poll()
  connection.interrupt();
  // Well before the BLOCK's 10 s, which would end the call without an error.
  ASSERT_EQ(blocked.wait_for(8s), std::future_status::ready);
  const auto message = blocked.get();
  EXPECT_NE(message.find("interrupted"), std::string::npos) << message;
  EXPECT_FALSE(connection.connected());

  // The interruption stays until connect().
  EXPECT_THROW(connection.command({"PING"}), RedisConnectionError);
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

TEST(redis_connection_test, interrupt_before_a_call_fails_it_at_once) {
  RedisServer server;
  RedisConnection connection(server.connection_options());
  connection.connect();
  connection.interrupt();
  try {
    connection.command({"PING"});
    ADD_FAILURE() << "expected an interruption";
  } catch (const RedisConnectionError& error) {
    EXPECT_NE(std::string(error.what()).find("interrupted"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(connection.connected());
  connection.connect();
  EXPECT_EQ(connection.command({"PING"}).str(), "PONG");
}

TEST(redis_connection_test, fixture_restart_keeps_port_and_aof_data) {
  RedisServer server(RedisServerOptions{.aof_always = true});
  const auto port = server.port();
  EXPECT_EQ(server.command({"SET", "durable", "yes"}).str(), "OK");
  server.restart();
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.command({"GET", "durable"}).str(), "yes");
  server.kill();
  EXPECT_FALSE(server.running());
  server.start();
  EXPECT_EQ(server.command({"GET", "durable"}).str(), "yes");
}

}  // namespace
}  // namespace connector
