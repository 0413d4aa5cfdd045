#include "redis/byte_stream.hpp"

#include <stdexcept>

#include <arpa/inet.h>
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

#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

#include "common/errno_text.hpp"

namespace connector {
namespace {

// Keepalive finds a dead peer on an idle connection (a consumer waiting in XREADGROUP BLOCK behind a
// NAT or load balancer that dropped the flow) within about a minute.
constexpr int kKeepaliveIdleSeconds = 30;
constexpr int kKeepaliveIntervalSeconds = 10;
constexpr int kKeepaliveProbes = 3;

bool is_ip_literal(const std::string& host) {
  in6_addr v6{};
  in_addr v4{};
  return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 || ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

/// errno_text() in the words of a unix-socket connect, where ENOENT and EACCES concern the socket file.
std::string connect_errno_text(int error, bool unix_socket) {
  if (unix_socket && error == ENOENT) return "no such socket file";
  if (unix_socket && error == EACCES) return "permission denied";
  return errno_text(error);
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

struct AddrInfoFree {
  void operator()(addrinfo* info) const { freeaddrinfo(info); }
};

std::string numeric_host(const addrinfo* info) {
  char host[NI_MAXHOST] = "?";
  ::getnameinfo(info->ai_addr, info->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
  return host;
}

}  // namespace

void ByteStream::SslFree::operator()(ssl_st* ssl) const { SSL_free(ssl); }
void ByteStream::SslCtxFree::operator()(ssl_ctx_st* ctx) const { SSL_CTX_free(ctx); }

ByteStream::ByteStream(ByteStreamOptions options)
    : options_(std::move(options)), address_(options_.endpoint.describe()) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    throw RedisConnectionError("Cannot create the wake-up descriptor for the Redis connection to " + address_ +
                               ": " + errno_text(errno));
  }
}

void ByteStream::retarget(const RedisEndpoint& endpoint, const RedisTlsOptions& tls) {
  if (is_open()) throw std::logic_error("ByteStream::retarget: the stream is open");
  options_.endpoint.host = endpoint.host;
  options_.endpoint.port = endpoint.port;
  options_.tls = tls;
  address_ = options_.endpoint.describe();
}

ByteStream::~ByteStream() {
  close();
  ::close(wake_fd_);
}

// ---- errors and waiting --------------------------------------------------------------------------

void ByteStream::fail(const std::string& message) {
  close();
  throw RedisConnectionError(message);
}

void ByteStream::fail_closed(const std::string& cause) {
  close();
  throw RedisConnectionError(cause, RedisErrorKind::Closed);
}

void ByteStream::fail_timeout(const std::string& message) {
  close();
  throw RedisConnectionError(message, RedisErrorKind::Timeout);
}

void ByteStream::check_interrupted() {
  if (interrupted_.load(std::memory_order_acquire)) fail("Redis call on " + address_ + " interrupted");
}

void ByteStream::clear_interruption() {
  std::uint64_t counter = 0;
  while (::read(wake_fd_, &counter, sizeof counter) > 0) {
  }
  interrupted_.store(false, std::memory_order_release);
}

void ByteStream::interrupt() noexcept {
  interrupted_.store(true, std::memory_order_release);
  const std::uint64_t one = 1;
  // Async-signal-safe; a full counter (never in practice) still leaves the descriptor readable.
  [[maybe_unused]] const auto ignored = ::write(wake_fd_, &one, sizeof one);
}

/// Waits until the socket has `events`, the deadline passes, or interrupt() is called (throws).
ByteStream::Wait ByteStream::wait_for(short events, Clock::time_point deadline) {
  for (;;) {
    check_interrupted();
    const auto now = Clock::now();
    if (now >= deadline) return Wait::TimedOut;
    const auto remaining = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    pollfd fds[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
    const int result = ::poll(fds, 2, remaining > INT_MAX ? INT_MAX : static_cast<int>(remaining));
    if (result < 0) {
      if (errno == EINTR) continue;
      fail("poll() failed on the connection to " + address_ + ": " + errno_text(errno));
    }
    if (fds[1].revents != 0) fail("Redis call on " + address_ + " interrupted");
    // POLLERR/POLLHUP count as ready: the next read or write reports what happened.
    if (fds[0].revents != 0) return Wait::Ready;
  }
}

// ---- connecting ------------------------------------------------------------------------------------

void ByteStream::connect(Clock::time_point deadline) {
  close();
  clear_interruption();
  if (options_.endpoint.scheme == RedisEndpoint::Scheme::Unix) {
    open_unix(deadline);
  } else {
    open_tcp(deadline);
  }
  if (options_.endpoint.scheme == RedisEndpoint::Scheme::Tls) {
    setup_tls();
    tls_handshake(deadline);
  }
}

void ByteStream::open_unix(Clock::time_point deadline) {
  const std::string& path = options_.endpoint.unix_path;
  sockaddr_un address_un{};
  address_un.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address_un.sun_path) {
    fail("Cannot connect to Redis at " + address_ + ": the socket path is empty or longer than " +
         std::to_string(sizeof address_un.sun_path - 1) + " bytes. Check REDIS_URL");
  }
  std::memcpy(address_un.sun_path, path.c_str(), path.size() + 1);
  const std::string cause = try_connect(AF_UNIX, &address_un, sizeof address_un, deadline, true);
  if (!cause.empty()) {
    fail("Cannot connect to Redis at " + address_ + ": " + cause +
         ". Check that redis-server runs with this unixsocket and that this user may open it");
  }
}

void ByteStream::open_tcp(Clock::time_point deadline) {
  const auto& endpoint = options_.endpoint;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  // getaddrinfo() cannot be interrupted or bounded; resolver timeouts come from resolv.conf.
  const int status = ::getaddrinfo(endpoint.host.c_str(), std::to_string(endpoint.port).c_str(), &hints, &found);
  if (status != 0) {
    fail("Cannot connect to Redis at " + address_ + ": cannot resolve host '" + endpoint.host +
         "': " + ::gai_strerror(status) + ". Check the host in REDIS_URL");
  }
  std::unique_ptr<addrinfo, AddrInfoFree> addresses(found);
  std::string causes;
  for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    const std::string cause =
        try_connect(candidate->ai_family, candidate->ai_addr, candidate->ai_addrlen, deadline, false);
    if (cause.empty()) {
      tune_tcp_socket();
      return;
    }
    if (!causes.empty()) causes += "; ";
    if (found->ai_next != nullptr) causes += numeric_host(candidate) + ": ";
    causes += cause;
  }
  fail("Cannot connect to Redis at " + address_ + ": " + causes +
       ". Check that Redis is running and that the host and port in REDIS_URL are right");
}

void ByteStream::tune_tcp_socket() {
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &kKeepaliveIdleSeconds, sizeof kKeepaliveIdleSeconds);
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &kKeepaliveIntervalSeconds, sizeof kKeepaliveIntervalSeconds);
  ::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &kKeepaliveProbes, sizeof kKeepaliveProbes);
}

/// Returns an empty string with the socket connected, or the cause of the failure with it closed.
std::string ByteStream::try_connect(int family, const void* target, unsigned length, Clock::time_point deadline,
                                    bool unix_socket) {
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return "socket() failed: " + errno_text(errno);
  int result;
  do {
    result = ::connect(fd_, static_cast<const sockaddr*>(target), static_cast<socklen_t>(length));
  } while (result < 0 && errno == EINTR);
  if (result == 0) return {};
  if (errno != EINPROGRESS) {
    const int error = errno;
    close_socket();
    return connect_errno_text(error, unix_socket);
  }
  if (wait_for(POLLOUT, deadline) == Wait::TimedOut) {
    close_socket();
    return "no connection within " + std::to_string(options_.connect_timeout.count()) + " ms (connect timeout)";
  }
  int error = 0;
  socklen_t error_length = sizeof error;
  ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &error_length);
  if (error != 0) {
    close_socket();
    return connect_errno_text(error, unix_socket);
  }
  return {};
}

void ByteStream::close_socket() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void ByteStream::close() noexcept {
  if (ssl_ && ssl_healthy_ && fd_ >= 0) {
    // Best effort close_notify; the socket is non-blocking and the BIO never raises SIGPIPE.
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
  }
  ERR_clear_error();
  ssl_.reset();
  ssl_ctx_.reset();
  ssl_healthy_ = false;
  close_socket();
}

// ---- TLS -------------------------------------------------------------------------------------------

const std::string& ByteStream::tls_name() const {
  return options_.tls.server_name.empty() ? options_.endpoint.host : options_.tls.server_name;
}

void ByteStream::setup_tls() {
  ERR_clear_error();
  ssl_ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!ssl_ctx_) fail("Cannot create a TLS context for " + address_ + ": " + openssl_errors());
  SSL_CTX_set_min_proto_version(ssl_ctx_.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ssl_ctx_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  load_tls_trust();
  load_tls_client_certificate();

  ssl_.reset(SSL_new(ssl_ctx_.get()));
  if (!ssl_) fail("Cannot create a TLS session for " + address_ + ": " + openssl_errors());
  BIO* bio = new_socket_bio(fd_);
  if (bio == nullptr) fail("Cannot create a TLS socket BIO for " + address_ + ": " + openssl_errors());
  SSL_set_bio(ssl_.get(), bio, bio);  // the session owns the BIO (one reference for both directions)
  const std::string& name = tls_name();
  // RFC 6066 forbids IP literals in SNI; the name is still verified below.
  if (!is_ip_literal(name)) SSL_set_tlsext_host_name(ssl_.get(), name.c_str());
  // Without this OpenSSL accepts any certificate the CA signed, for any host. OpenSSL 3 treats an IP
  // literal here as an IP address to match against the certificate's IP SANs.
  if (!options_.tls.insecure && SSL_set1_host(ssl_.get(), name.c_str()) != 1) {
    fail("Cannot set the TLS name to verify ('" + name + "') for " + address_ + ": " + openssl_errors());
  }
}

void ByteStream::load_tls_trust() {
  const auto& tls = options_.tls;
  if (tls.insecure) {
    SSL_CTX_set_verify(ssl_ctx_.get(), SSL_VERIFY_NONE, nullptr);
    return;
  }
  SSL_CTX_set_verify(ssl_ctx_.get(), SSL_VERIFY_PEER, nullptr);
  if (!tls.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ssl_ctx_.get(), tls.ca_file.c_str(), nullptr) != 1) {
      fail("Cannot load the TLS CA file '" + tls.ca_file + "' for " + address_ + ": " + openssl_errors() +
           ". Check REDIS_TLS_CA_FILE (a PEM file of CA certificates)");
    }
  } else if (SSL_CTX_set_default_verify_paths(ssl_ctx_.get()) != 1) {
    fail("Cannot load the system's CA certificates for " + address_ + ": " + openssl_errors() +
         ". Set REDIS_TLS_CA_FILE");
  }
}

void ByteStream::load_tls_client_certificate() {
  const auto& tls = options_.tls;
  if (tls.cert_file.empty() && tls.key_file.empty()) return;
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    fail("TLS client authentication for " + address_ +
         " needs both a certificate and a key. Set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE together");
  }
  if (SSL_CTX_use_certificate_chain_file(ssl_ctx_.get(), tls.cert_file.c_str()) != 1) {
    fail("Cannot load the TLS client certificate '" + tls.cert_file + "' for " + address_ + ": " +
         openssl_errors() + ". Check REDIS_TLS_CERT_FILE");
  }
  if (SSL_CTX_use_PrivateKey_file(ssl_ctx_.get(), tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    fail("Cannot load the TLS client key '" + tls.key_file + "' for " + address_ + ": " + openssl_errors() +
         ". Check REDIS_TLS_KEY_FILE (an unencrypted PEM key)");
  }
  if (SSL_CTX_check_private_key(ssl_ctx_.get()) != 1) {
    fail("The TLS client key '" + tls.key_file + "' does not match the certificate '" + tls.cert_file +
         "' (for " + address_ + "). Check REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
  }
}

void ByteStream::tls_handshake(Clock::time_point deadline) {
  ssl_healthy_ = true;
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int result = SSL_connect(ssl_.get());
    if (result == 1) return;
    const int error = SSL_get_error(ssl_.get(), result);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) fail_tls_handshake(error);
    if (wait_for(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline) == Wait::TimedOut) {
      fail_timeout("TLS handshake with " + address_ + " did not finish within " +
                   std::to_string(options_.connect_timeout.count()) +
                   " ms (connect timeout). Check that this port speaks TLS (rediss://) and the server is not "
                   "overloaded");
    }
  }
}

void ByteStream::fail_tls_handshake(int error) {
  const int saved_errno = errno;
  ssl_healthy_ = false;
  const long verify = SSL_get_verify_result(ssl_.get());
  if (!options_.tls.insecure && verify != X509_V_OK) {
    std::string hint = "Check REDIS_TLS_CA_FILE (the CA that signed the server's certificate)";
    if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      hint = "The server's certificate does not cover '" + tls_name() +
             "'. Check the host in REDIS_URL or set REDIS_TLS_SERVER_NAME to a name the certificate holds";
    }
    openssl_errors();  // drop the queue; the verify result says it better
    fail("TLS handshake with " + address_ + " failed: certificate verify failed: " +
         X509_verify_cert_error_string(verify) + ". " + hint);
  }
  std::string cause = error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN ? "the server closed the connection"
                                                                                    : openssl_errors();
  if (error == SSL_ERROR_SYSCALL && saved_errno != 0) cause = errno_text(saved_errno);
  fail("TLS handshake with " + address_ + " failed: " + cause +
       ". Check that the port speaks TLS and, if the server requires client certificates, "
       "REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE");
}

/// For a TLS call that did not complete: what to wait for, or throws for a fatal error.
short ByteStream::tls_wait_events(int error) {
  switch (error) {
    case SSL_ERROR_WANT_READ:
      return POLLIN;
    case SSL_ERROR_WANT_WRITE:
      return POLLOUT;
    case SSL_ERROR_ZERO_RETURN:
      fail_closed("the server closed the TLS session");
    case SSL_ERROR_SYSCALL: {
      ssl_healthy_ = false;
      const int saved = errno;
      openssl_errors();
      fail_closed(saved != 0 ? errno_text(saved) : std::string("the server closed the connection"));
    }
    default: {
      ssl_healthy_ = false;
      const std::string cause = openssl_errors();
      // A peer that vanished without close_notify (killed, or a proxy dropping the flow).
      if (cause.find("unexpected eof") != std::string::npos) {
        fail_closed("the server closed the connection (unexpected eof)");
      }
      fail_closed("TLS error: " + cause);
    }
  }
}

// ---- bytes -------------------------------------------------------------------------------------------

void ByteStream::write_all(std::string_view data, Clock::time_point deadline) {
  check_interrupted();
  if (fd_ < 0) throw RedisConnectionError("Not connected to Redis at " + address_ + " (connect() first)");
  std::size_t sent = 0;
  while (sent < data.size()) {
    short wait_events = POLLOUT;
    if (ssl_) {
      ERR_clear_error();
      errno = 0;
      std::size_t written = 0;
      const int result = SSL_write_ex(ssl_.get(), data.data() + sent, data.size() - sent, &written);
      if (result == 1) {
        sent += written;
        continue;
      }
      wait_events = tls_wait_events(SSL_get_error(ssl_.get(), result));
    } else {
      const ssize_t result = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (result >= 0) {
        sent += static_cast<std::size_t>(result);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fail_closed(errno_text(errno));
    }
    if (wait_for(wait_events, deadline) == Wait::TimedOut) fail_timeout("Redis at " + address_ + " did not take the bytes in time (while sending)");
  }
}

std::size_t ByteStream::read_some(char* buffer, std::size_t capacity, Clock::time_point deadline) {
  check_interrupted();
  if (fd_ < 0) throw RedisConnectionError("Not connected to Redis at " + address_ + " (connect() first)");
  for (;;) {
    short wait_events = POLLIN;
    if (ssl_) {
      ERR_clear_error();
      errno = 0;
      std::size_t received = 0;
      // SSL_read is called before polling: bytes already decrypted inside OpenSSL never show up as
      // socket readability.
      const int result = SSL_read_ex(ssl_.get(), buffer, capacity, &received);
      if (result == 1) return received;
      wait_events = tls_wait_events(SSL_get_error(ssl_.get(), result));
    } else {
      const ssize_t result = ::recv(fd_, buffer, capacity, 0);
      if (result > 0) return static_cast<std::size_t>(result);
      if (result == 0) fail_closed("the server closed the connection");
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) fail_closed(errno_text(errno));
    }
    if (wait_for(wait_events, deadline) == Wait::TimedOut) fail_timeout("Redis at " + address_ + " sent nothing in time (command timeout)");
  }
}

}  // namespace connector
