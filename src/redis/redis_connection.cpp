#include "redis/redis_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>
#include <strings.h>
#include <deque>
#include <stdexcept>
#include <utility>

#include "common/errors.hpp"
#include "identity/jwt.hpp"

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

bool is_ip_literal(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

std::string errno_text(int error) {
  switch (error) {
    case ECONNREFUSED:
      return "connection refused";
    case ECONNRESET:
      return "connection reset by the server";
    case EPIPE:
      return "the server closed the connection (broken pipe)";
    case ETIMEDOUT:
      return "the TCP connection timed out";
    case EHOSTUNREACH:
      return "host unreachable";
    case ENETUNREACH:
      return "network unreachable";
    case ENOENT:
      return "no such socket file";
    case EACCES:
      return "permission denied";
    default:
      return std::strerror(error);
  }
}

// Drains OpenSSL's (per-thread) error queue into one readable text.
std::string openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    // "error:0A000086:SSL routines::certificate verify failed" -> keep the reason after the last ':'.
    const char* reason = std::strrchr(buffer, ':');
    const std::string piece = reason != nullptr && reason[1] != '\0' ? reason + 1 : buffer;
    if (text.find(piece) != std::string::npos) continue;
    if (!text.empty()) text += "; ";
    text += piece;
  }
  return text.empty() ? "unknown TLS error" : text;
}

// ---- A socket BIO that cannot raise SIGPIPE -------------------------------------------------------
// OpenSSL's own socket BIO writes with write(2): a write to a peer that is gone would kill the process
// with SIGPIPE. This one uses send(MSG_NOSIGNAL) and recv, and otherwise behaves like a non-blocking
// socket BIO (retry flags on EAGAIN, BIO_CTRL_EOF after the peer closed).
struct SocketBioState {
  int fd = -1;
  bool eof = false;
};

int socket_bio_write(BIO* bio, const char* data, std::size_t length, std::size_t* written) {
  auto* state = static_cast<SocketBioState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t result;
  do {
    result = ::send(state->fd, data, length, MSG_NOSIGNAL);
  } while (result < 0 && errno == EINTR);
  if (result < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_write(bio);
    *written = 0;
    return 0;
  }
  *written = static_cast<std::size_t>(result);
  return 1;
}

int socket_bio_read(BIO* bio, char* data, std::size_t length, std::size_t* read_bytes) {
  auto* state = static_cast<SocketBioState*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  ssize_t result;
  do {
    result = ::recv(state->fd, data, length, 0);
  } while (result < 0 && errno == EINTR);
  *read_bytes = 0;
  if (result < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(bio);
    return 0;
  }
  if (result == 0) {
    state->eof = true;
    return 0;
  }
  *read_bytes = static_cast<std::size_t>(result);
  return 1;
}

long socket_bio_ctrl(BIO* bio, int command, long, void*) {
  auto* state = static_cast<SocketBioState*>(BIO_get_data(bio));
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return state != nullptr && state->eof ? 1 : 0;
    default:
      return 0;
  }
}

int socket_bio_destroy(BIO* bio) {
  delete static_cast<SocketBioState*>(BIO_get_data(bio));
  BIO_set_data(bio, nullptr);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  // Created once and kept for the life of the process (OpenSSL's own methods are static too).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* created = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                       "connector nosigpipe socket");
    if (created == nullptr) throw std::bad_alloc();
    BIO_meth_set_write_ex(created, socket_bio_write);
    BIO_meth_set_read_ex(created, socket_bio_read);
    BIO_meth_set_ctrl(created, socket_bio_ctrl);
    BIO_meth_set_destroy(created, socket_bio_destroy);
    return created;
  }();
  return method;
}

BIO* new_socket_bio(int fd) {
  BIO* bio = BIO_new(socket_bio_method());
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, new SocketBioState{fd, false});
  BIO_set_init(bio, 1);
  return bio;
}

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
struct ReaderFree {
  void operator()(redisReader* reader) const { redisReaderFree(reader); }
};
struct AddrInfoFree {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

}  // namespace

struct RedisConnection::Impl {
  explicit Impl(RedisConnectionOptions opts)
      : options(std::move(opts)), address(options.endpoint.describe()) {
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
      throw RedisConnectionError("Cannot create the wake-up descriptor for the Redis connection to " +
                                 address + ": " + std::strerror(errno));
    }
    input.resize(kReadChunk);
  }

  ~Impl() {
    close();
    ::close(wake_fd);
  }

  RedisConnectionOptions options;
  const std::string address;

  // Owned by the thread that uses the connection.
  int fd = -1;
  std::unique_ptr<SSL_CTX, SslCtxFree> ssl_ctx;
  std::unique_ptr<SSL, SslFree> ssl;
  bool ssl_healthy = false;  // false after a fatal TLS error: then no close_notify is sent
  std::unique_ptr<redisReader, ReaderFree> reader;
  std::string output;           // formatted commands not yet written
  std::size_t output_sent = 0;  // bytes of `output` already written
  std::vector<char> input;      // scratch buffer for one read
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

  // Shared with interrupt(): the flag is the state, the eventfd wakes a poll() in progress.
  std::atomic<bool> interrupted{false};
  int wake_fd = -1;

  // ---- errors ------------------------------------------------------------------------------------

  [[noreturn]] void fail(const std::string& message) {
    close();
    throw RedisConnectionError(message);
  }

  [[noreturn]] void fail_interrupted() { fail("Redis call on " + address + " interrupted"); }

  void check_interrupted() {
    if (interrupted.load(std::memory_order_acquire)) fail_interrupted();
  }

  void clear_interruption() {
    std::uint64_t counter = 0;
    while (::read(wake_fd, &counter, sizeof counter) > 0) {
    }
    interrupted.store(false, std::memory_order_release);
  }

  // ---- waiting -----------------------------------------------------------------------------------

  enum class Wait { Ready, TimedOut };

  /// Waits until `fd` has `events`, the deadline passes, or interrupt() is called (throws).
  Wait wait_for(short events, Clock::time_point deadline) {
    for (;;) {
      check_interrupted();
      const auto now = Clock::now();
      if (now >= deadline) return Wait::TimedOut;
      const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
      const int result = ::poll(fds, 2, remaining > INT_MAX ? INT_MAX : static_cast<int>(remaining));
      if (result < 0) {
        if (errno == EINTR) continue;
        fail("poll() failed on the connection to " + address + ": " + std::strerror(errno));
      }
      if (fds[1].revents != 0) fail_interrupted();
      // POLLERR/POLLHUP count as ready: the next read or write reports what happened.
      if (fds[0].revents != 0) return Wait::Ready;
    }
  }

  [[noreturn]] void fail_timeout(std::chrono::milliseconds timeout, const char* what) {
    if (connecting) {
      fail("Redis at " + address + " did not answer the connection handshake within " +
           std::to_string(options.connect_timeout.count()) +
           " ms (connect timeout). Check that this is a Redis port (TLS ports need rediss://) and that the "
           "server is not overloaded");
    }
    fail("Redis at " + address + " did not answer within " + std::to_string(timeout.count()) + " ms (" +
         what + "); the connection was closed. Check that the server is reachable and not overloaded");
  }

  // ---- connecting --------------------------------------------------------------------------------

  void open_socket(Clock::time_point deadline) {
    const auto& endpoint = options.endpoint;
    if (endpoint.scheme == RedisEndpoint::Scheme::Unix) {
      sockaddr_un address_un{};
      address_un.sun_family = AF_UNIX;
      if (endpoint.unix_path.empty() || endpoint.unix_path.size() >= sizeof address_un.sun_path) {
        fail("Cannot connect to Redis at " + address + ": the socket path is empty or longer than " +
             std::to_string(sizeof address_un.sun_path - 1) + " bytes. Check REDIS_URL");
      }
      std::memcpy(address_un.sun_path, endpoint.unix_path.c_str(), endpoint.unix_path.size() + 1);
      const std::string cause =
          try_connect(AF_UNIX, reinterpret_cast<const sockaddr*>(&address_un), sizeof address_un, deadline);
      if (!cause.empty()) {
        fail("Cannot connect to Redis at " + address + ": " + cause +
             ". Check that redis-server runs with this unixsocket and that this user may open it");
      }
      return;
    }

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    // getaddrinfo() cannot be interrupted or bounded; resolver timeouts come from resolv.conf.
    const int status =
        ::getaddrinfo(endpoint.host.c_str(), std::to_string(endpoint.port).c_str(), &hints, &found);
    if (status != 0) {
      fail("Cannot connect to Redis at " + address + ": cannot resolve host '" + endpoint.host +
           "': " + ::gai_strerror(status) + ". Check the host in REDIS_URL");
    }
    std::unique_ptr<addrinfo, AddrInfoFree> addresses(found);
    std::string causes;
    for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
      const std::string cause =
          try_connect(candidate->ai_family, candidate->ai_addr, candidate->ai_addrlen, deadline);
      if (cause.empty()) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        // Keepalive finds a dead peer on an idle connection (a consumer waiting in XREADGROUP BLOCK
        // behind a NAT or load balancer that dropped the flow) within about a minute.
        const int idle = 30, interval = 10, count = 3;
        ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
        ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
        return;
      }
      if (!causes.empty()) causes += "; ";
      if (found->ai_next != nullptr) causes += numeric_host(candidate) + ": ";
      causes += cause;
    }
    fail("Cannot connect to Redis at " + address + ": " + causes +
         ". Check that Redis is running and that the host and port in REDIS_URL are right");
  }

  static std::string numeric_host(const addrinfo* info) {
    char host[NI_MAXHOST] = "?";
    ::getnameinfo(info->ai_addr, info->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
    return host;
  }

  /// Returns an empty string with `fd` connected, or the cause of the failure with `fd` closed.
  std::string try_connect(int family, const sockaddr* target, socklen_t length, Clock::time_point deadline) {
    fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket() failed: ") + std::strerror(errno);
    int result;
    do {
      result = ::connect(fd, target, length);
    } while (result < 0 && errno == EINTR);
    if (result == 0) return {};
    if (errno != EINPROGRESS) {
      const int error = errno;
      close_socket();
      return errno_text(error);
    }
    if (wait_for(POLLOUT, deadline) == Wait::TimedOut) {
      close_socket();
      return "no connection within " + std::to_string(options.connect_timeout.count()) +
             " ms (connect timeout)";
    }
    int error = 0;
    socklen_t error_length = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_length);
    if (error != 0) {
      close_socket();
      return errno_text(error);
    }
    return {};
  }

  void close_socket() noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  const std::string& tls_name() const {
    return options.tls.server_name.empty() ? options.endpoint.host : options.tls.server_name;
  }

  void setup_tls() {
    const auto& tls = options.tls;
    ERR_clear_error();
    ssl_ctx.reset(SSL_CTX_new(TLS_client_method()));
    if (!ssl_ctx) fail("Cannot create a TLS context for " + address + ": " + openssl_errors());
    SSL_CTX_set_min_proto_version(ssl_ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_mode(ssl_ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (tls.insecure) {
      SSL_CTX_set_verify(ssl_ctx.get(), SSL_VERIFY_NONE, nullptr);
    } else {
      SSL_CTX_set_verify(ssl_ctx.get(), SSL_VERIFY_PEER, nullptr);
      if (!tls.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ssl_ctx.get(), tls.ca_file.c_str(), nullptr) != 1) {
          fail("Cannot load the TLS CA file '" + tls.ca_file + "' for " + address + ": " + openssl_errors() +
               ". Check REDIS_TLS_CA_FILE (a PEM file of CA certificates)");
        }
      } else if (SSL_CTX_set_default_verify_paths(ssl_ctx.get()) != 1) {
        fail("Cannot load the system's CA certificates for " + address + ": " + openssl_errors() +
             ". Set REDIS_TLS_CA_FILE");
      }
    }
    if (!tls.cert_file.empty() || !tls.key_file.empty()) {
      if (tls.cert_file.empty() || tls.key_file.empty()) {
        fail("TLS client authentication for " + address +
             " needs both a certificate and a key. Set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE together");
      }
      if (SSL_CTX_use_certificate_chain_file(ssl_ctx.get(), tls.cert_file.c_str()) != 1) {
        fail("Cannot load the TLS client certificate '" + tls.cert_file + "' for " + address + ": " +
             openssl_errors() + ". Check REDIS_TLS_CERT_FILE");
      }
      if (SSL_CTX_use_PrivateKey_file(ssl_ctx.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        fail("Cannot load the TLS client key '" + tls.key_file + "' for " + address + ": " +
             openssl_errors() + ". Check REDIS_TLS_KEY_FILE (an unencrypted PEM key)");
      }
      if (SSL_CTX_check_private_key(ssl_ctx.get()) != 1) {
        fail("The TLS client key '" + tls.key_file + "' does not match the certificate '" + tls.cert_file +
             "' (for " + address + "). Check REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
      }
    }

    ssl.reset(SSL_new(ssl_ctx.get()));
    if (!ssl) fail("Cannot create a TLS session for " + address + ": " + openssl_errors());
    BIO* bio = new_socket_bio(fd);
    if (bio == nullptr) fail("Cannot create a TLS socket BIO for " + address + ": " + openssl_errors());
    SSL_set_bio(ssl.get(), bio, bio);  // the session owns the BIO (one reference for both directions)
    const std::string& name = tls_name();
    // RFC 6066 forbids IP literals in SNI; the name is still verified below.
    if (!is_ip_literal(name)) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
    // Without this OpenSSL accepts any certificate the CA signed, for any host. OpenSSL 3 treats an IP
    // literal here as an IP address to match against the certificate's IP SANs.
    if (!tls.insecure && SSL_set1_host(ssl.get(), name.c_str()) != 1) {
      fail("Cannot set the TLS name to verify ('" + name + "') for " + address + ": " + openssl_errors());
    }
  }

  void tls_handshake(Clock::time_point deadline) {
    ssl_healthy = true;
    for (;;) {
      ERR_clear_error();
      errno = 0;
      const int result = SSL_connect(ssl.get());
      if (result == 1) return;
      const int error = SSL_get_error(ssl.get(), result);
      if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
        if (wait_for(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == Wait::TimedOut) {
          fail("TLS handshake with " + address + " did not finish within " +
               std::to_string(options.connect_timeout.count()) +
               " ms (connect timeout). Check that this port speaks TLS (rediss://) and the server is not "
               "overloaded");
        }
        continue;
      }
      ssl_healthy = false;
      const long verify = SSL_get_verify_result(ssl.get());
      if (!options.tls.insecure && verify != X509_V_OK) {
        std::string hint = "Check REDIS_TLS_CA_FILE (the CA that signed the server's certificate)";
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
          hint =
              "The server's certificate does not cover '" + tls_name() +
              "'. Check the host in REDIS_URL or set REDIS_TLS_SERVER_NAME to a name the certificate holds";
        }
        openssl_errors();  // drop the queue; the verify result says it better
        fail("TLS handshake with " + address +
             " failed: certificate verify failed: " + X509_verify_cert_error_string(verify) + ". " + hint);
      }
      std::string cause = error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN
                              ? "the server closed the connection"
                              : openssl_errors();
      if (error == SSL_ERROR_SYSCALL && errno != 0) cause = errno_text(errno);
      fail("TLS handshake with " + address + " failed: " + cause +
           ". Check that the port speaks TLS and, if the server requires client certificates, "
           "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
    }
  }

  // ---- byte I/O ------------------------------------------------------------------------------------

  [[noreturn]] void fail_closed(const std::string& cause) {
    if (connecting) {
      fail("Redis at " + address + " closed the connection during the handshake: " + cause +
           ". Check that the port matches the scheme (redis:// or rediss://) and, if the server requires "
           "client certificates, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
    }
    fail("Connection to Redis at " + address + " lost: " + cause + ". It was closed; reconnect to continue");
  }

  /// Writes the whole output buffer before the deadline.
  void flush(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    while (output_sent < output.size()) {
      const char* data = output.data() + output_sent;
      const std::size_t length = output.size() - output_sent;
      short wait_events = POLLOUT;
      if (ssl) {
        ERR_clear_error();
        errno = 0;
        std::size_t written = 0;
        const int result = SSL_write_ex(ssl.get(), data, length, &written);
        if (result == 1) {
          output_sent += written;
          continue;
        }
        wait_events = tls_wait_events(SSL_get_error(ssl.get(), result));
      } else {
        const ssize_t result = ::send(fd, data, length, MSG_NOSIGNAL);
        if (result >= 0) {
          output_sent += static_cast<std::size_t>(result);
          continue;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fail_closed(errno_text(errno));
      }
      if (wait_for(wait_events, deadline) == Wait::TimedOut) fail_timeout(timeout, "while sending");
    }
    output.clear();
    output_sent = 0;
    if (output.capacity() > kMaxRetainedOutput) output.shrink_to_fit();
  }

  /// For a TLS call that did not complete: what to wait for, or throws for a fatal error.
  short tls_wait_events(int error) {
    switch (error) {
      case SSL_ERROR_WANT_READ:
        return POLLIN;
      case SSL_ERROR_WANT_WRITE:
        return POLLOUT;
      case SSL_ERROR_ZERO_RETURN:
        fail_closed("the server closed the TLS session");
      case SSL_ERROR_SYSCALL: {
        ssl_healthy = false;
        const int saved = errno;
        openssl_errors();
        fail_closed(saved != 0 ? errno_text(saved) : std::string("the server closed the connection"));
      }
      default: {
        ssl_healthy = false;
        const std::string cause = openssl_errors();
        // A peer that vanished without close_notify (killed, or a proxy dropping the flow).
        if (cause.find("unexpected eof") != std::string::npos) {
          fail_closed("the server closed the connection (unexpected eof)");
        }
        fail_closed("TLS error: " + cause);
      }
    }
  }

  /// Reads what is available (waiting up to the deadline) and feeds it to the RESP reader.
  void read_some(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    for (;;) {
      short wait_events = POLLIN;
      if (ssl) {
        ERR_clear_error();
        errno = 0;
        std::size_t received = 0;
        // SSL_read is called before polling: bytes already decrypted inside OpenSSL never show up as
        // socket readability.
        const int result = SSL_read_ex(ssl.get(), input.data(), input.size(), &received);
        if (result == 1) {
          feed(received);
          return;
        }
        wait_events = tls_wait_events(SSL_get_error(ssl.get(), result));
      } else {
        const ssize_t result = ::recv(fd, input.data(), input.size(), 0);
        if (result > 0) {
          feed(static_cast<std::size_t>(result));
          return;
        }
        if (result == 0) fail_closed("the server closed the connection");
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) fail_closed(errno_text(errno));
      }
      if (wait_for(wait_events, deadline) == Wait::TimedOut) fail_timeout(timeout, "command timeout");
    }
  }

  void feed(std::size_t length) {
    if (redisReaderFeed(reader.get(), input.data(), length) != REDIS_OK) {
      fail("Cannot buffer the reply from Redis at " + address + " (out of memory)");
    }
  }

  // ---- commands ------------------------------------------------------------------------------------

  void require_connected() {
    check_interrupted();
    if (fd < 0) {
      throw RedisConnectionError("Not connected to Redis at " + address + " (connect() first)");
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
         " has no oid (object ID) claim to use as the user name; set REDIS_USERNAME to the principal's object ID");
  }

  void append_raw(const std::vector<std::string_view>& argv) {
    argv_data.clear();
    argv_length.clear();
    for (const auto& argument : argv) {
      argv_data.push_back(argument.data());
      argv_length.push_back(argument.size());
    }
    char* formatted = nullptr;
    const int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv_data.size()),
                                              argv_data.data(), argv_length.data());
    if (length < 0) {
      fail("Cannot format a command for Redis at " + address + " (out of memory or too long)");
    }
    try {
      output.append(formatted, static_cast<std::size_t>(length));
    } catch (...) {
      redisFreeCommand(formatted);
      throw;
    }
    redisFreeCommand(formatted);
    ++pending;
    ++replies_appended;
  }

  RedisReply read_reply(std::optional<std::chrono::milliseconds> timeout_override) {
    require_connected();
    if (pending == reauth_replies.size())
      throw std::logic_error("RedisConnection::read_reply: no command is waiting for a reply");
    const auto timeout = timeout_override.value_or(options.command_timeout);
    const auto deadline = Clock::now() + timeout;
    flush(deadline, timeout);
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK) {
        // The reader's error is permanent (e.g. nesting deeper than hiredis supports): drop the connection.
        fail("Protocol error in a reply from Redis at " + address + ": " + reader->errstr +
             ". The connection was closed");
      }
      if (raw != nullptr) {
        --pending;
        RedisReply reply(static_cast<redisReply*>(raw));
        const std::uint64_t index = replies_read++;
        if (reauth_replies.empty() || reauth_replies.front() != index) return reply;
        reauth_replies.pop_front();
        if (reply.is_error()) {
          fail("Redis re-authentication of user '" + entra_user + "' with a fresh Microsoft Entra ID token failed on " +
               address + ": " + scrub(reply.str()) +
               ". Check the user's data access policy (REDIS_USERNAME or the token's object ID)");
        }
        continue;  // the caller's reply may already be buffered
      }
      read_some(deadline, timeout);
    }
  }

  // ---- connect / close -----------------------------------------------------------------------------

  void connect() {
    close();
    clear_interruption();
    const auto deadline = Clock::now() + options.connect_timeout;
    open_socket(deadline);
    if (options.endpoint.scheme == RedisEndpoint::Scheme::Tls) {
      setup_tls();
      tls_handshake(deadline);
    }
    reader.reset(redisReaderCreate());
    if (!reader) fail("Cannot create a RESP reader for " + address + " (out of memory)");
    // hiredis frees its input buffer whenever more than 16 KB of it sit idle, so every large reply
    // (a batch of entries) allocated it again; keep up to kMaxRetainedInput instead.
    reader->maxbuf = kMaxRetainedInput;
    connecting = true;
    try {
      handshake(deadline);
    } catch (...) {
      connecting = false;
      throw;
    }
    connecting = false;
  }

  /// AUTH, SELECT, CLIENT SETNAME and a PING, pipelined in one round trip. The PING makes connect()
  /// prove the server speaks RESP and needs no password we lack, so a bad setup fails at startup.
  void handshake(Clock::time_point deadline) {
    const auto& endpoint = options.endpoint;
    enum class Step { Auth, Select, SetName, Ping };
    std::vector<Step> steps;
    const std::string database = std::to_string(endpoint.database);
    std::string username = endpoint.username;
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
      append({"SELECT", database});
      steps.push_back(Step::Select);
    }
    if (!options.client_name.empty()) {
      append({"CLIENT", "SETNAME", options.client_name});
      steps.push_back(Step::SetName);
    }
    append({"PING"});
    steps.push_back(Step::Ping);

    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    const auto budget = remaining.count() > 0 ? remaining : std::chrono::milliseconds(1);
    std::vector<RedisReply> replies;
    for (std::size_t i = 0; i < steps.size(); ++i) replies.push_back(read_reply(budget));

    const std::string user = username.empty() ? "default" : username;
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const RedisReply& reply = replies[i];
      if (!reply.is_error()) continue;
      const std::string server_text = scrub(reply.str());
      switch (steps[i]) {
        case Step::Auth:
          fail("Redis authentication failed for user '" + user + "' on " + address + ": " + server_text +
               (options.entra_tokens
                    ? ". Check that this principal (REDIS_USERNAME, else the token's object ID) has a Redis data "
                      "access policy assignment and that Microsoft Entra authentication is enabled on the cache"
                    : ". Check REDIS_USERNAME and REDIS_PASSWORD (or the credentials in REDIS_URL)"));
        case Step::Select:
          fail("Cannot select database " + database + " on " + address + ": " + server_text +
               ". Check the database number in REDIS_URL");
        case Step::SetName:
          // The name only helps operators find the connection in CLIENT LIST; an ACL user without
          // +client|setname must still be able to work.
          if (reply.str().rfind("NOPERM", 0) == 0) continue;
          fail("CLIENT SETNAME failed on " + address + ": " + server_text + ". Check the client name");
        case Step::Ping:
          if (reply.str().rfind("NOAUTH", 0) == 0) {
            fail("Redis at " + address + " requires authentication: " + server_text +
                 ". Set REDIS_PASSWORD (and REDIS_USERNAME for an ACL user) or put them in REDIS_URL");
          }
          fail("Redis at " + address + " refused PING: " + server_text +
               ". Check the ACL permissions of user '" + user + "'");
      }
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
    if (ssl && ssl_healthy && fd >= 0) {
      // Best effort close_notify; the socket is non-blocking and the BIO never raises SIGPIPE.
      ERR_clear_error();
      SSL_shutdown(ssl.get());
    }
    ERR_clear_error();
    ssl.reset();
    ssl_ctx.reset();
    ssl_healthy = false;
    close_socket();
    reader.reset();
    output.clear();
    output_sent = 0;
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

void RedisConnection::connect() { impl_->connect(); }

void RedisConnection::close() noexcept { impl_->close(); }

bool RedisConnection::connected() const noexcept { return impl_->fd >= 0; }

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

std::size_t RedisConnection::pending_replies() const noexcept {
  return impl_->pending - impl_->reauth_replies.size();
}

void RedisConnection::interrupt() noexcept {
  impl_->interrupted.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  // Async-signal-safe; a full counter (never in practice) still leaves the descriptor readable.
  [[maybe_unused]] const auto ignored = ::write(impl_->wake_fd, &one, sizeof one);
}

const RedisEndpoint& RedisConnection::endpoint() const noexcept { return impl_->options.endpoint; }

}  // namespace connector
