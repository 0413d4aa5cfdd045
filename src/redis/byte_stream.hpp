#pragma once
// The transport under RedisConnection: one socket (TCP, TLS or unix) with deadlines and interrupt().
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/errors.hpp"
#include "config/config.hpp"

struct ssl_st;
struct ssl_ctx_st;

namespace connector {

struct ByteStreamOptions {
  RedisEndpoint endpoint;  // only the address is used here, never the credentials
  RedisTlsOptions tls;
  std::chrono::milliseconds connect_timeout{10000};  // named in the connect messages
};

/// A connected byte stream to a Redis address: TCP (no delay, keepalive), TLS (verified, SNI, never
/// SIGPIPE) or a unix socket. Not thread-safe, except interrupt(). Every failure throws a
/// RedisConnectionError and leaves the stream closed: of kind Timeout when a deadline passed, Closed
/// when the peer closed or reset the connection or TLS failed on an open stream (what() is then the
/// bare cause, "connection reset by the server"), else Io, naming the address.
class ByteStream {
 public:
  using Clock = std::chrono::steady_clock;

  explicit ByteStream(ByteStreamOptions options);
  ~ByteStream();
  ByteStream(const ByteStream&) = delete;
  ByteStream& operator=(const ByteStream&) = delete;

  /// Closes any previous connection, clears an interruption, connects and (rediss://) completes the TLS
  /// handshake before `deadline`.
  void connect(Clock::time_point deadline);
  void close() noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }

  /// Writes all of `data` before `deadline`.
  void write_all(std::string_view data, Clock::time_point deadline);
  /// Reads at least one byte (at most `capacity`) before `deadline`; returns how many.
  std::size_t read_some(char* buffer, std::size_t capacity, Clock::time_point deadline);

  /// Thread-safe and async-signal-safe: a call blocked in another thread (or the next one) throws
  /// RedisConnectionError "interrupted" and closes the stream. connect() clears the interruption.
  void interrupt() noexcept;
  /// Throws (and closes) when interrupt() was called.
  void check_interrupted();

  const std::string& address() const noexcept { return address_; }
  /// Points the next connect() at another node (a routed connection); only while closed.
  void retarget(const RedisEndpoint& endpoint, const RedisTlsOptions& tls);

 private:
  struct SslFree {
    void operator()(ssl_st* ssl) const;
  };
  struct SslCtxFree {
    void operator()(ssl_ctx_st* ctx) const;
  };
  enum class Wait { Ready, TimedOut };

  [[noreturn]] void fail(const std::string& message);
  [[noreturn]] void fail_closed(const std::string& cause);
  [[noreturn]] void fail_timeout(const std::string& message);
  void clear_interruption();
  Wait wait_for(short events, Clock::time_point deadline);
  void open_unix(Clock::time_point deadline);
  void open_tcp(Clock::time_point deadline);
  void tune_tcp_socket();
  std::string try_connect(int family, const void* target, unsigned length, Clock::time_point deadline,
                          bool unix_socket);
  void close_socket() noexcept;
  const std::string& tls_name() const;
  void setup_tls();
  void load_tls_trust();
  void load_tls_client_certificate();
  void tls_handshake(Clock::time_point deadline);
  [[noreturn]] void fail_tls_handshake(int error);
  short tls_wait_events(int error);

  ByteStreamOptions options_;
  std::string address_;
  int fd_ = -1;
  std::unique_ptr<ssl_ctx_st, SslCtxFree> ssl_ctx_;
  std::unique_ptr<ssl_st, SslFree> ssl_;
  bool ssl_healthy_ = false;  // false after a fatal TLS error: then no close_notify is sent
  // Shared with interrupt(): the flag is the state, the eventfd wakes a poll() in progress.
  std::atomic<bool> interrupted_{false};
  int wake_fd_ = -1;
};

}  // namespace connector
