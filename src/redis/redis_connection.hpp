#pragma once
// One socket to Redis (TCP, TLS or unix) with hiredis doing the RESP work.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "identity/token_refresher.hpp"
#include "redis/redis_reply.hpp"

struct redisReplyObjectFunctions;

namespace connector {

/// hiredis reader callbacks and the privdata they get, to build one reply without a reply tree.
struct ReplyBuilder {
  redisReplyObjectFunctions* functions = nullptr;
  void* privdata = nullptr;
};

class RedisConnection;

/// The node a routed connection goes to, found afresh at every connect().
struct RedisRoute {
  std::string host;
  std::uint16_t port = 0;
  std::string tls_name;  // the node's announced hostname, if any (REDIS_TLS_SERVER_NAME still wins)
};

/// Decides at each connect() which node a connection goes to: the primary of a Redis Cluster slot, or
/// the primary the sentinels name. Shared by connections on several threads: thread-safe.
class RedisRouter {
 public:
  virtual ~RedisRouter() = default;
  /// The node to connect to now. Throws RedisConnectionError when none can be found yet (retry later),
  /// ConfigurationError when the setup is wrong (not a cluster, an unknown master name).
  virtual RedisRoute route() const = 0;
  /// Checks a fresh connection to the routed node (still the primary?); throws RedisConnectionError.
  virtual void verify(RedisConnection& /*connection*/) const {}
};

struct RedisConnectionOptions {
  RedisEndpoint endpoint;
  RedisTlsOptions tls;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds command_timeout{10000};  // default wait for one reply
  std::string client_name;                            // CLIENT SETNAME when not empty
  /// REDIS_AUTH=entra: the password is this provider's newest token and the user name the endpoint's
  /// (REDIS_USERNAME), else the token's `oid` claim. Before any command outside MULTI, a connection whose
  /// token generation is older than the provider's sends AUTH first, so live connections follow every
  /// refresh and callers need not know.
  std::shared_ptr<const AccessTokenProvider> entra_tokens;
  /// When set, every connect() asks it for the node and connects there with this endpoint's scheme,
  /// credentials and database, and these TLS options (tls.server_name, when set, is verified on every
  /// node; else the route's tls_name, else the route's host).
  std::shared_ptr<const RedisRouter> router;
};

/// A blocking Redis connection with timeouts and pipelining. Not thread-safe, except interrupt().
/// Any I/O failure or timeout throws RedisConnectionError and leaves the connection closed
/// (connect() again to reuse it); its kind tells a Timeout from a connection the server Closed, a
/// Protocol error and other Io failures. Error replies (-ERR, NOGROUP…) are returned, not thrown; a
/// refused (re-)authentication throws RedisConnectionError of kind Handshake and closes the connection.
class RedisConnection {
 public:
  explicit RedisConnection(RedisConnectionOptions options);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  /// Connects, verifies TLS, authenticates (AUTH [user] pass), selects the database, sets the
  /// client name. Throws RedisConnectionError naming the address and the cause; never a secret.
  void connect();
  void close() noexcept;
  bool connected() const noexcept;

  /// Sends one command and waits for its reply.
  RedisReply command(const std::vector<std::string_view>& argv,
                     std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Pipelining: append() formats into the output buffer; read_reply() flushes it and reads the next reply.
  void append(const std::vector<std::string_view>& argv);
  RedisReply read_reply(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Reads the next reply through `builder`'s callbacks instead of into a RedisReply.
  void read_reply(const ReplyBuilder& builder, std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Sends the appended commands now, without waiting for their replies (read_reply() reads them later).
  void flush(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  /// Number of appended commands whose replies were not read yet.
  std::size_t pending_replies() const noexcept;

  /// Thread-safe: a call blocked in another thread (or the next one) throws RedisConnectionError
  /// "interrupted" at once and the connection is closed. connect() clears the interruption.
  void interrupt() noexcept;

  const RedisEndpoint& endpoint() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace connector
