#include "redis/redis_connection.hpp"

#include "redis/reply_arena.hpp"

#include <hiredis/hiredis.h>
#include <strings.h>

#include <deque>
#include <stdexcept>
#include <utility>

#include "common/errors.hpp"
#include "identity/jwt.hpp"
#include "redis/byte_stream.hpp"

namespace connector {
namespace {

using Clock = std::chrono::steady_clock;

// One read from the socket: large enough that a 10 MB reply needs few system calls over plain TCP
// (TLS hands out at most one 16 KB record per SSL_read anyway).
constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxRetainedInput = 1024 * 1024;
// The output buffer keeps its capacity between commands; after an unusually large command it is
// given back so one 10 MB SET does not pin 10 MB for the life of the connection.
constexpr std::size_t kMaxRetainedOutput = 1024 * 1024;

struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};

ByteStreamOptions stream_options(const RedisConnectionOptions& options) {
  return {options.endpoint, options.tls, options.connect_timeout};
}

}  // namespace

/// The RESP and handshake layer: hiredis's formatter and reader over a ByteStream, pipelining,
/// AUTH/SELECT/SETNAME, Entra ID re-authentication, and the wording of every failure.
struct RedisConnection::Impl {
  explicit Impl(RedisConnectionOptions opts)
      : options(std::move(opts)),
        configured_tls_name(options.tls.server_name),
        stream(stream_options(options)),
        address(stream.address()) {
    input.resize(kReadChunk);
  }

  ~Impl() { close(); }

  RedisConnectionOptions options;
  const std::string configured_tls_name;  // REDIS_TLS_SERVER_NAME: verified on every routed node
  ByteStream stream;
  std::string address;  // of the node connected to (a routed connection changes it at connect())

  // Owned by the thread that uses the connection. The reader builds each reply in `arena`, which the
  // reply takes with it (declared first: the reader may hold a partial reply in it).
  std::unique_ptr<ReplyArena> arena;
  std::unique_ptr<redisReader, ReaderFree> reader;
  std::string output;       // formatted commands not yet written
  std::vector<char> input;  // scratch buffer for one read
  std::size_t pending = 0;  // replies not read yet, including internal AUTHs
  // Entra ID: the token generation of the last AUTH on this connection, the user it authenticated, and
  // the reply numbers of AUTHs slipped in before commands (their replies are read and checked here).
  std::uint64_t auth_generation = 0;
  std::string entra_user;
  std::string entra_token;  // secret: only kept to scrub it from server texts
  std::uint64_t replies_appended = 0;
  std::uint64_t replies_read = 0;
  std::deque<std::uint64_t> reauth_replies;
  bool in_multi = false;  // AUTH inside MULTI would be queued into the transaction
  bool connecting = false;             // inside connect(): failures are reported as connect failures
  std::vector<const char*> argv_data;  // reused by append()
  std::vector<std::size_t> argv_length;

  // ---- errors ------------------------------------------------------------------------------------

  [[noreturn]] void fail(const std::string& message, RedisErrorKind kind = RedisErrorKind::Io) {
    close();
    throw RedisConnectionError(message, kind);
  }

  [[noreturn]] void fail_timeout(std::chrono::milliseconds timeout, const char* what) {
    if (connecting) {
      fail("Redis at " + address + " did not answer the connection handshake within " +
               std::to_string(options.connect_timeout.count()) +
               " ms (connect timeout). Check that this is a Redis port (TLS ports need rediss://) and that "
               "the "
               "server is not overloaded",
           RedisErrorKind::Timeout);
    }
    fail("Redis at " + address + " did not answer within " + std::to_string(timeout.count()) + " ms (" +
             what + "); the connection was closed. Check that the server is reachable and not overloaded",
         RedisErrorKind::Timeout);
  }

  [[noreturn]] void fail_closed(const std::string& cause) {
    if (connecting) {
      fail("Redis at " + address + " closed the connection during the handshake: " + cause +
               ". Check that the port matches the scheme (redis:// or rediss://) and, if the server requires "
               "client certificates, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE",
           RedisErrorKind::Closed);
    }
    fail("Connection to Redis at " + address + " lost: " + cause + ". It was closed; reconnect to continue",
         RedisErrorKind::Closed);
  }

  /// Runs one ByteStream call; its failures close this layer too and are worded for a Redis command.
  template <typename Io>
  auto stream_io(Io&& io, std::chrono::milliseconds timeout, const char* what) {
    try {
      return io();
    } catch (const RedisConnectionError& error) {
      if (error.kind() == RedisErrorKind::Timeout) fail_timeout(timeout, what);
      if (error.kind() == RedisErrorKind::Closed) fail_closed(error.what());
      close();
      throw;
    } catch (...) {
      close();
      throw;
    }
  }

  // ---- byte I/O ------------------------------------------------------------------------------------

  /// Writes the whole output buffer before the deadline.
  void flush(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    if (output.empty()) return;
    stream_io([&] { stream.write_all(output, deadline); }, timeout, "while sending");
    output.clear();
    if (output.capacity() > kMaxRetainedOutput) output.shrink_to_fit();
  }

  /// Reads what is available (waiting up to the deadline) and feeds it to the RESP reader.
  void read_some(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    const std::size_t length = stream_io([&] { return stream.read_some(input.data(), input.size(), deadline); },
                                         timeout, "command timeout");
    if (redisReaderFeed(reader.get(), input.data(), length) != REDIS_OK) {
      fail("Cannot buffer the reply from Redis at " + address + " (out of memory)");
    }
  }

  // ---- commands ------------------------------------------------------------------------------------

  void require_connected() {
    stream_io([&] { stream.check_interrupted(); }, options.command_timeout, "");
    if (!stream.is_open()) {
      throw RedisConnectionError("Not connected to Redis at " + address + " (connect() first)",
                                 RedisErrorKind::Closed);
    }
  }

  void append(const std::vector<std::string_view>& argv) {
    require_connected();
    if (argv.empty()) throw std::invalid_argument("RedisConnection::append: empty command");
    if (options.entra_tokens && !connecting && !in_multi) reauthenticate_if_stale();
    const std::string_view name = argv.front();
    const auto is = [name](std::string_view word) {
      return name.size() == word.size() && ::strncasecmp(name.data(), word.data(), word.size()) == 0;
    };
    if (is("MULTI")) in_multi = true;
    if (is("EXEC") || is("DISCARD")) in_multi = false;
    append_raw(argv);
  }

  /// A token refreshed since this connection's last AUTH: authenticate again before the next command.
  void reauthenticate_if_stale() {
    TokenSnapshot snapshot = options.entra_tokens->current();
    if (snapshot.generation == auth_generation) return;
    std::string user = entra_username(snapshot.token);
    append_raw({"AUTH", user, snapshot.token});
    reauth_replies.push_back(replies_appended - 1);
    auth_generation = snapshot.generation;
    entra_user = std::move(user);
    entra_token = std::move(snapshot.token);
  }

  /// REDIS_USERNAME when set, else the object ID (`oid`) of the token's principal, as Microsoft's
  /// Redis Entra ID samples do.
  std::string entra_username(const std::string& token) {
    if (!options.endpoint.username.empty()) return options.endpoint.username;
    const auto claims = jwt_claims(token);
    if (claims && claims->contains("oid") && (*claims)["oid"].is_string()) return (*claims)["oid"].get<std::string>();
    fail("The Microsoft Entra ID token for Redis at " + address +
             " has no oid (object ID) claim to use as the user name; set REDIS_USERNAME to the principal's "
             "object ID",
         RedisErrorKind::Handshake);
  }

  void append_raw(const std::vector<std::string_view>& argv) {
    argv_data.clear();
    argv_length.clear();
    for (const auto& argument : argv) {
      argv_data.push_back(argument.data());
      argv_length.push_back(argument.size());
    }
    // The sds formatter writes each length with hiredis's own integer formatting; redisFormatCommandArgv
    // calls sprintf per argument, a fifth of the acker's time for an XACK of 1000 IDs.
    sds formatted = nullptr;
    const int length = redisFormatSdsCommandArgv(&formatted, static_cast<int>(argv_data.size()),
                                                 argv_data.data(), argv_length.data());
    if (length < 0) {
      fail("Cannot format a command for Redis at " + address + " (out of memory or too long)");
    }
    try {
      output.append(formatted, static_cast<std::size_t>(length));
    } catch (...) {
      redisFreeSdsCommand(formatted);
      throw;
    }
    redisFreeSdsCommand(formatted);
    ++pending;
    ++replies_appended;
  }

  /// The next reply of the caller's commands (re-authentication replies before it are checked here),
  /// built by `builder` when given (the result is then an empty RedisReply), else in the arena.
  RedisReply read_reply(std::optional<std::chrono::milliseconds> timeout_override,
                        const ReplyBuilder* builder = nullptr) {
    require_connected();
    if (pending == reauth_replies.size())
      throw std::logic_error("RedisConnection::read_reply: no command is waiting for a reply");
    const auto timeout = timeout_override.value_or(options.command_timeout);
    const auto deadline = Clock::now() + timeout;
    flush(deadline, timeout);
    for (;;) {
      // Chosen per reply: a reply is read by one set of callbacks from its first byte to its last.
      const bool reauth_reply = !reauth_replies.empty() && reauth_replies.front() == replies_read;
      if (builder != nullptr && !reauth_reply) {
        reader->fn = builder->functions;
        reader->privdata = builder->privdata;
      } else {
        reader->fn = reply_arena_functions();
        reader->privdata = arena.get();
      }
      void* raw = nullptr;
      if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
        // The reader's error is permanent (e.g. nesting deeper than hiredis supports): drop the connection.
        fail("Protocol error in a reply from Redis at " + address + ": " + reader->errstr +
                 ". The connection was closed",
             RedisErrorKind::Protocol);
      }
      if (raw != nullptr) {
        --pending;
        ++replies_read;
        if (!reauth_reply && builder != nullptr) return RedisReply();
        RedisReply reply(static_cast<redisReply*>(raw), std::exchange(arena, ReplyArena::take()));
        if (!reauth_reply) return reply;
        reauth_replies.pop_front();
        if (reply.is_error()) {
          fail("Redis re-authentication of user '" + entra_user +
                   "' with a fresh Microsoft Entra ID token failed on " + address + ": " +
                   scrub(reply.str()) +
                   ". Check the user's data access policy (REDIS_USERNAME or the token's object ID)",
               RedisErrorKind::Handshake);
        }
        continue;  // the caller's reply may already be buffered
      }
      read_some(deadline, timeout);
    }
  }

  // ---- connect / close -----------------------------------------------------------------------------

  /// Asks the router for the node of this connect(). A map or a sentinel that cannot be read is a
  /// failure to connect (retried like one); an interruption while asking is kept for connect() to see.
  void route() {
    close();
    RedisRoute route;
    try {
      route = options.router->route();
    } catch (const RedisStreamError& error) {
      throw RedisConnectionError(error.what());
    }
    stream.check_interrupted();
    options.endpoint.host = std::move(route.host);
    options.endpoint.port = route.port;
    options.tls.server_name = configured_tls_name.empty() ? route.tls_name : configured_tls_name;
    stream.retarget(options.endpoint, options.tls);
    address = stream.address();
  }

  void connect() {
    close();
    const auto deadline = Clock::now() + options.connect_timeout;
    stream.connect(deadline);
    if (!arena) arena = ReplyArena::take();
    reader.reset(redisReaderCreateWithFunctions(reply_arena_functions()));
    if (!reader) fail("Cannot create a RESP reader for " + address + " (out of memory)");
    // hiredis frees its input buffer whenever more than 16 KB of it sit idle, so every large reply
    // (a batch of entries) allocated it again; keep up to kMaxRetainedInput instead.
    reader->maxbuf = kMaxRetainedInput;
    reader->privdata = arena.get();
    connecting = true;
    try {
      handshake(deadline);
    } catch (...) {
      connecting = false;
      throw;
    }
    connecting = false;
  }

  enum class Step { Auth, Select, SetName, Ping };

  /// AUTH, SELECT, CLIENT SETNAME and a PING, pipelined in one round trip. The PING makes connect()
  /// prove the server speaks RESP and needs no password we lack, so a bad setup fails at startup.
  void handshake(Clock::time_point deadline) {
    std::string username = options.endpoint.username;
    const std::vector<Step> steps = append_handshake(username);
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    const auto budget = remaining.count() > 0 ? remaining : std::chrono::milliseconds(1);
    std::vector<RedisReply> replies;
    for (std::size_t i = 0; i < steps.size(); ++i) replies.push_back(read_reply(budget));
    const std::string user = username.empty() ? "default" : username;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      if (replies[i].is_error()) check_handshake_error(steps[i], replies[i], user);
    }
  }

  /// Appends the handshake's commands; returns their steps and sets `username` to the user authenticated.
  std::vector<Step> append_handshake(std::string& username) {
    const auto& endpoint = options.endpoint;
    std::vector<Step> steps;
    if (options.entra_tokens) {
      // Every new connection takes the newest token.
      TokenSnapshot snapshot = options.entra_tokens->current();
      entra_user = username = entra_username(snapshot.token);
      entra_token = std::move(snapshot.token);
      auth_generation = snapshot.generation;
      append({"AUTH", username, entra_token});
      steps.push_back(Step::Auth);
    } else if (!endpoint.password.empty()) {
      if (endpoint.username.empty()) {
        append({"AUTH", endpoint.password});
      } else {
        append({"AUTH", endpoint.username, endpoint.password});
      }
      steps.push_back(Step::Auth);
    }
    if (endpoint.database != 0) {
      append({"SELECT", std::to_string(endpoint.database)});
      steps.push_back(Step::Select);
    }
    if (!options.client_name.empty()) {
      append({"CLIENT", "SETNAME", options.client_name});
      steps.push_back(Step::SetName);
    }
    append({"PING"});
    steps.push_back(Step::Ping);
    return steps;
  }

  /// Throws the message for a handshake step's error reply; returns for the errors that are harmless.
  void check_handshake_error(Step step, const RedisReply& reply, const std::string& user) {
    const std::string server_text = scrub(reply.str());
    switch (step) {
      case Step::Auth:
        fail("Redis authentication failed for user '" + user + "' on " + address + ": " + server_text +
                 (options.entra_tokens
                      ? ". Check that this principal (REDIS_USERNAME, else the token's object ID) has a "
                        "Redis data "
                        "access policy assignment and that Microsoft Entra authentication is enabled on the "
                        "cache"
                      : ". Check REDIS_USERNAME and REDIS_PASSWORD (or the credentials in REDIS_URL)"),
             RedisErrorKind::Handshake);
      case Step::Select:
        fail("Cannot select database " + std::to_string(options.endpoint.database) + " on " + address + ": " +
                 server_text + ". Check the database number in REDIS_URL",
             RedisErrorKind::Handshake);
      case Step::SetName:
        // The name only helps operators find the connection in CLIENT LIST; an ACL user without
        // +client|setname must still be able to work.
        if (redis_reply_code(reply.str()) == RedisReplyCode::NoPerm) return;
        fail("CLIENT SETNAME failed on " + address + ": " + server_text + ". Check the client name",
             RedisErrorKind::Handshake);
      case Step::Ping:
        if (redis_reply_code(reply.str()) == RedisReplyCode::NoAuth) {
          fail("Redis at " + address + " requires authentication: " + server_text +
                   ". Set REDIS_PASSWORD (and REDIS_USERNAME for an ACL user) or put them in REDIS_URL",
               RedisErrorKind::Handshake);
        }
        fail("Redis at " + address + " refused PING: " + server_text +
                 ". Check the ACL permissions of user '" + user + "'",
             RedisErrorKind::Handshake);
    }
  }

  /// Server error texts are quoted in messages; make sure none can echo the password back.
  std::string scrub(std::string_view text) const {
    while (!text.empty() && text.back() == '.') text.remove_suffix(1);  // our sentence adds its own
    std::string result(text);
    for (const std::string* secret : {&options.endpoint.password, &entra_token}) {
      if (secret->empty()) continue;
      for (auto at = result.find(*secret); at != std::string::npos; at = result.find(*secret, at + 3)) {
        result.replace(at, secret->size(), "***");
      }
    }
    return result;
  }

  void close() noexcept {
    stream.close();
    reader.reset();
    if (arena) arena->reset();  // a reply cut short by the failure
    output.clear();
    pending = 0;
    replies_appended = 0;
    replies_read = 0;
    reauth_replies.clear();
    in_multi = false;
  }
};

RedisConnection::RedisConnection(RedisConnectionOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RedisConnection::~RedisConnection() = default;

void RedisConnection::connect() {
  if (!impl_->options.router) return impl_->connect();
  impl_->route();
  impl_->connect();
  try {
    impl_->options.router->verify(*this);
  } catch (...) {
    impl_->close();
    throw;
  }
}

void RedisConnection::close() noexcept { impl_->close(); }

bool RedisConnection::connected() const noexcept { return impl_->stream.is_open(); }

RedisReply RedisConnection::command(const std::vector<std::string_view>& argv,
                                    std::optional<std::chrono::milliseconds> timeout) {
  if (pending_replies() != 0) {
    throw std::logic_error("RedisConnection::command: " + std::to_string(pending_replies()) +
                           " pipelined replies are still unread");
  }
  impl_->append(argv);
  return impl_->read_reply(timeout);
}

void RedisConnection::append(const std::vector<std::string_view>& argv) { impl_->append(argv); }

RedisReply RedisConnection::read_reply(std::optional<std::chrono::milliseconds> timeout) {
  return impl_->read_reply(timeout);
}

void RedisConnection::read_reply(const ReplyBuilder& builder, std::optional<std::chrono::milliseconds> timeout) {
  impl_->read_reply(timeout, &builder);
}

void RedisConnection::flush(std::optional<std::chrono::milliseconds> timeout) {
  impl_->require_connected();
  const auto budget = timeout.value_or(impl_->options.command_timeout);
  impl_->flush(Clock::now() + budget, budget);
}

std::size_t RedisConnection::pending_replies() const noexcept {
  return impl_->pending - impl_->reauth_replies.size();
}

void RedisConnection::interrupt() noexcept { impl_->stream.interrupt(); }

const RedisEndpoint& RedisConnection::endpoint() const noexcept { return impl_->options.endpoint; }

}  // namespace connector
