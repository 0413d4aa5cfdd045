#pragma once
// A private redis-server per test: free port, own temp dir, optional TLS, ACL user, unix socket, AOF.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis_connection.hpp"
#include "redis/redis_reply.hpp"
#include "support/child_process.hpp"
#include "support/tls_certs.hpp"

namespace connector::testing {

struct RedisServerOptions {
  bool tls = false;              // TLS only: the plain port is disabled
  bool tls_client_auth = false;  // the server requires a client certificate (tls-auth-clients yes)
  bool unix_socket = false;      // also listen on unix_socket_path()
  bool aof_always = false;       // appendonly yes, appendfsync always (for crash tests)
  bool cluster = false;          // cluster-enabled yes, nodes.conf in its dir; a port whose bus (+10000) is free
  // Every member has an initializer so designated initializers may name only what they need.
  std::string acl_user{}, acl_password{};  // an extra ACL user with every permission
  std::string requirepass{};               // password of the default user
  std::vector<std::string> extra_args{};   // appended verbatim, e.g. {"--maxmemory", "10mb"}
};

/// A redis-server of its own on a free port (and its own temp dir), stopped and removed on destruction.
/// Not thread-safe; command() opens a fresh connection, so it may be used while others are connected.
class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const;
  /// "redis://127.0.0.1:PORT", or "rediss://localhost:PORT" with TLS (no credentials).
  std::string url() const;
  /// Empty unless options.unix_socket.
  std::string unix_socket_path() const;
  /// The PKI the server uses; throws std::logic_error unless options.tls.
  const TlsCertificates& certificates() const;
  /// Ready-to-use TCP/TLS options: CA (and client certificate when required) for TLS, the ACL user
  /// or requirepass password when set, short timeouts suited to tests.
  RedisConnectionOptions connection_options() const;
  /// The same for the unix socket (requires options.unix_socket).
  RedisConnectionOptions unix_connection_options() const;

  void stop();     // SIGTERM and wait: a clean shutdown (AOF flushed)
  void kill();     // SIGKILL
  void start();    // starts again on the same port and data dir; no-op while running
  void restart();  // stop + start
  bool running();
  /// The server's log so far (for failure messages).
  std::string log() const;

  /// Runs a command on a fresh connection, e.g. server.command({"XLEN", "s"}).
  RedisReply command(const std::vector<std::string_view>& argv);

 private:
  void launch();
  std::vector<std::string> arguments() const;

  RedisServerOptions options_;
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::optional<TlsCertificates> certificates_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace connector::testing
