#include "eventhubs/amqp_relay.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <thread>

#include "common/errors.hpp"
#include "common/thread_annotations.hpp"
#include "config/host_port.hpp"
#include "core/json_writer.hpp"
#include "eventhubs/relay_pump.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"

namespace connector {

namespace {

using namespace relay_transport;

bool is_ip_address(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string user_agent() { return fmt::format("redis-eventhubs-connector/{}", build_version()); }

}  // namespace

/// The listening side and what the connections report; the connections themselves live in their
/// pending operations.
class AmqpRelay::Impl {
 public:
  explicit Impl(AmqpRelayOptions options);

  const AmqpRelayOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  asio::ssl::context& tls() { return tls_; }
  std::uint16_t port() const { return port_; }
  /// "host:port" of the Event Hubs end.
  const std::string& target() const { return target_; }
  std::string describe() const;

  void start();
  void stop();

  // ---- io thread: what a connection reports about its way out ----
  void stage(std::uint64_t id, std::string what) EXCLUDES(mutex_);
  void failed(std::uint64_t id, std::string why) EXCLUDES(mutex_);
  void opened(std::uint64_t id) EXCLUDES(mutex_);

  std::optional<std::string> problem() const EXCLUDES(mutex_);

 private:
  void accept();
  void open_path(std::uint64_t id, tcp::socket loopback);

  const AmqpRelayOptions options_;
  const std::string target_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};  // outlives the connections' TLS streams
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::uint64_t accepted_ = 0;  // io thread only

  mutable Mutex mutex_;
  std::uint64_t latest_ GUARDED_BY(mutex_) = 0;  // the connection problem() is about
  std::string stage_ GUARDED_BY(mutex_);         // its step on the way out; empty once open
  std::optional<std::string> failure_ GUARDED_BY(mutex_);
};

namespace {

/// One loopback connection's way out: resolve, TCP, CONNECT through the proxy, TLS, the WebSocket
/// upgrade (each when asked for); then a RelayPump carries the bytes. Every step reports to the relay,
/// which keeps the latest connection's story for the AMQP side.
template <class Remote>
class OutboundPath : public std::enable_shared_from_this<OutboundPath<Remote>> {
 public:
  static constexpr bool kTls = kIsTls<Remote>;
  static constexpr bool kWebSocket = kIsWebSocket<Remote>;

  OutboundPath(AmqpRelay::Impl& relay, std::uint64_t id, tcp::socket loopback)
      : relay_(relay),
        options_(relay.options()),
        id_(id),
        loopback_(std::move(loopback)),
        remote_(make_stream(relay)) {}

  void start() {
    const auto& proxy = options_.proxy;
    const std::string host = proxy ? proxy->host : options_.host;
    const std::uint16_t port = proxy ? proxy->port : options_.port;
    relay_.stage(id_, fmt::format("resolving {}", next_hop()));
    resolver_.async_resolve(
        host, std::to_string(port),
        [self = this->shared_from_this()](ErrorCode ec, tcp::resolver::results_type results) {
          self->on_resolved(ec, std::move(results));
        });
  }

 private:
  static Remote make_stream(AmqpRelay::Impl& relay) {
    if constexpr (kTls) {
      return Remote(relay.io(), relay.tls());
    } else {
      return Remote(relay.io());
    }
  }

  /// The TCP stream under TLS and the WebSocket: timeouts, the connect, the proxy's CONNECT.
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(remote_); }

  /// The TLS stream: the remote end itself, or under the WebSocket.
  TlsStream& tls_layer() {
    if constexpr (kWebSocket) {
      return remote_.next_layer();
    } else {
      return remote_;
    }
  }

  /// "the proxy p:3128" or "host:443": where the TCP connection goes.
  std::string next_hop() const {
    return options_.proxy ? fmt::format("the proxy {}", options_.proxy->authority()) : relay_.target();
  }

  std::string error_text(ErrorCode ec) const {
    if (ec == beast::error::timeout)
      return fmt::format("no answer within {} ms", options_.setup_timeout.count());
    return ec.message();
  }

  void on_resolved(ErrorCode ec, tcp::resolver::results_type results) {
    if (ec) return fail(fmt::format("could not resolve {}: {}", next_hop(), error_text(ec)));
    relay_.stage(id_, fmt::format("connecting to {}", next_hop()));
    lowest().expires_after(options_.setup_timeout);
    lowest().async_connect(results,
                           [self = this->shared_from_this()](ErrorCode connect_error, const tcp::endpoint&) {
                             self->on_connected(connect_error);
                           });
  }

  void on_connected(ErrorCode ec) {
    if (ec) return fail(fmt::format("could not connect to {}: {}", next_hop(), error_text(ec)));
    ErrorCode ignored;
    lowest().socket().set_option(tcp::no_delay(true), ignored);  // AMQP frames are small and wait for answers
    if (options_.proxy) return ask_proxy();
    start_tls();
  }

  // ---- HTTP CONNECT ----

  void ask_proxy() {
    const ProxyUrl& proxy = *options_.proxy;
    relay_.stage(id_, fmt::format("waiting for the proxy {} to answer CONNECT {}", proxy.authority(),
                                  relay_.target()));
    request_.method(http::verb::connect);
    request_.target(relay_.target());
    request_.version(11);
    request_.set(http::field::host, relay_.target());
    request_.set(http::field::user_agent, user_agent());
    if (proxy.has_credentials()) {
      request_.set(
          http::field::proxy_authorization,
          fmt::format("Basic {}", base64_encode(fmt::format("{}:{}", proxy.username, proxy.password))));
    }
    lowest().expires_after(options_.setup_timeout);
    http::async_write(lowest(), request_, [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
      if (ec)
        return self->fail(
            fmt::format("could not send CONNECT to {}: {}", self->next_hop(), self->error_text(ec)));
      self->read_proxy_answer();
    });
  }

  void read_proxy_answer() {
    // A 2xx answer to CONNECT has no body: what follows it is the tunnel.
    proxy_answer_.skip(true);
    http::async_read_header(
        lowest(), buffer_, proxy_answer_,
        [self = this->shared_from_this()](ErrorCode ec, std::size_t) { self->on_proxy_answer(ec); });
  }

  void on_proxy_answer(ErrorCode ec) {
    const ProxyUrl& proxy = *options_.proxy;
    if (ec) {
      return fail(fmt::format("the proxy {} gave no answer to CONNECT {}: {}", proxy.authority(),
                              relay_.target(), error_text(ec)));
    }
    const auto& answer = proxy_answer_.get();
    const unsigned status = answer.result_int();
    const std::string reason(answer.reason());
    if (status == 407) {
      return fail(
          proxy.has_credentials()
              ? fmt::format("the proxy {} refused the user name and password of HTTPS_PROXY (HTTP 407 {})",
                            proxy.authority(), reason)
              : fmt::format("the proxy {} wants authentication (HTTP 407 {}); give it as "
                            "http://user:password@host:port in HTTPS_PROXY",
                            proxy.authority(), reason));
    }
    if (status / 100 != 2) {
      return fail(
          fmt::format("the proxy {} refused CONNECT {} (HTTP {} {}); it must allow tunnels to that host and "
                      "port",
                      proxy.authority(), relay_.target(), status, reason));
    }
    if (buffer_.size() != 0) {
      return fail(
          fmt::format("the proxy {} sent bytes after its answer to CONNECT, before the tunnel was used",
                      proxy.authority()));
    }
    start_tls();
  }

  // ---- TLS ----

  void start_tls() {
    if constexpr (kTls) {
      relay_.stage(id_, fmt::format("waiting for the TLS handshake with {}", relay_.target()));
      SSL* ssl = tls_layer().native_handle();
      // OpenSSL checks the name itself, so that a mismatch comes back as its own verify error.
      const bool named = is_ip_address(options_.host)
                             ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options_.host.c_str()) == 1
                             : SSL_set_tlsext_host_name(ssl, options_.host.c_str()) == 1 &&
                                   SSL_set1_host(ssl, options_.host.c_str()) == 1;
      if (!named) return fail(fmt::format("TLS with {}: cannot set the name to verify", relay_.target()));
      lowest().expires_after(options_.setup_timeout);
      tls_layer().async_handshake(asio::ssl::stream_base::client,
                                  [self = this->shared_from_this()](ErrorCode ec) { self->on_tls(ec); });
    } else {
      after_tls();
    }
  }

  void on_tls(ErrorCode ec) {
    if constexpr (kTls) {
      if (ec) {
        const long verify = SSL_get_verify_result(tls_layer().native_handle());
        const std::string why = verify != X509_V_OK ? fmt::format("certificate verify failed: {}",
                                                                  X509_verify_cert_error_string(verify))
                                                    : error_text(ec);
        return fail(
            fmt::format("the TLS handshake with {} failed: {}; check EVENT_HUBS_TLS_CA_FILE (and, behind a "
                        "proxy that inspects TLS, that its CA is trusted)",
                        relay_.target(), why));
      }
    }
    after_tls();
  }

  void after_tls() {
    if constexpr (kWebSocket) {
      upgrade();
    } else {
      lowest().expires_never();  // AMQP keeps its own time (idle timeout) from here
      pump();
    }
  }

  // ---- the WebSocket upgrade ----

  void upgrade() {
    relay_.stage(id_, fmt::format("waiting for the WebSocket upgrade of {}", relay_.target()));
    lowest().expires_never();  // the WebSocket keeps its own time from here
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.handshake_timeout = options_.setup_timeout;
    remote_.set_option(timeouts);
    remote_.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(http::field::sec_websocket_protocol, kAmqpWebSocketProtocol);
      request.set(http::field::user_agent, user_agent());
    }));
    const bool default_port = options_.port == (kTls ? 443 : 80);
    const std::string host_header = default_port ? options_.host : relay_.target();
    remote_.async_handshake(upgrade_answer_, host_header, kAmqpWebSocketPath,
                            [self = this->shared_from_this()](ErrorCode ec) { self->on_upgraded(ec); });
  }

  void on_upgraded(ErrorCode ec) {
    const std::string where = fmt::format("{}{}", relay_.target(), kAmqpWebSocketPath);
    if (ec == websocket::error::upgrade_declined) {
      return fail(fmt::format("{} refused the WebSocket upgrade (HTTP {} {})", where,
                              upgrade_answer_.result_int(), std::string(upgrade_answer_.reason())));
    }
    if (ec) return fail(fmt::format("the WebSocket upgrade of {} failed: {}", where, error_text(ec)));
    const std::string protocol(upgrade_answer_[http::field::sec_websocket_protocol]);
    if (protocol != kAmqpWebSocketProtocol) {
      return fail(fmt::format("{} did not take the WebSocket subprotocol {} (it answered \"{}\")", where,
                              kAmqpWebSocketProtocol, protocol));
    }
    pump();
  }

  void pump() {
    relay_.opened(id_);
    logger().debug("eventhubs_relay_open", {{"url", relay_.describe()}});
    auto& relay = relay_;
    const std::uint64_t id = id_;
    const std::string target = relay_.target();
    std::make_shared<RelayPump<Remote>>(
        std::move(loopback_), std::move(remote_),
        [&relay, id, target](const typename RelayPump<Remote>::End& end) {
          const char* what = kWebSocket ? "WebSocket" : "connection";
          if (!end.unreadable.empty()) {
            relay.failed(id, fmt::format("the relay dropped the {} to {}: {}", what, target, end.unreadable));
          } else if (!end.tcp_first) {
            relay.failed(id, fmt::format("the {} to {} ended: {}", what, target, end.remote));
          }
        },
        options_.stamp_batches)
        ->start();
  }

  /// The reason is kept before the loopback connection closes, so the AMQP side finds it when it sees
  /// the close.
  void fail(std::string why) {
    logger().debug("eventhubs_relay_failed", {{"error", why}});
    relay_.failed(id_, std::move(why));
    ErrorCode ignored;
    loopback_.close(ignored);
    lowest().close();
  }

  AmqpRelay::Impl& relay_;
  const AmqpRelayOptions& options_;
  const std::uint64_t id_;
  tcp::socket loopback_;
  Remote remote_;
  tcp::resolver resolver_{relay_.io()};
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response_parser<http::empty_body> proxy_answer_;
  websocket::response_type upgrade_answer_;
};

}  // namespace

AmqpRelay::Impl::Impl(AmqpRelayOptions options)
    : options_(std::move(options)), target_(join_host_port(options_.host, options_.port)) {
  if (options_.tls) {
    ErrorCode ec;
    tls_.set_verify_mode(asio::ssl::verify_peer);
    tls_.set_default_verify_paths(ec);
    if (!ec && !options_.ca_file.empty()) tls_.load_verify_file(options_.ca_file, ec);
    if (ec)
      throw EventHubsError(fmt::format("cannot load the CA certificates for {}: {}", target_, ec.message()));
  }
  ErrorCode ec;
  const tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
  acceptor_.open(loopback.protocol(), ec);
  if (!ec) acceptor_.bind(loopback, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw EventHubsError(
        fmt::format("the relay to {} cannot listen on 127.0.0.1: {}", target_, ec.message()));
  port_ = acceptor_.local_endpoint().port();
}

std::string AmqpRelay::Impl::describe() const {
  std::string url = options_.websocket
                        ? fmt::format("{}://{}{}", options_.tls ? "wss" : "ws", target_, kAmqpWebSocketPath)
                        : fmt::format("{}://{} (relayed)", options_.tls ? "amqps" : "amqp", target_);
  if (options_.proxy) url += fmt::format(" via the proxy {}", options_.proxy->authority());
  return url;
}

void AmqpRelay::Impl::start() {
  accept();
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), options_.websocket ? "eventhubs-ws" : "eventhubs-relay");
    io_.run();
  });
}

// Nothing uses the loopback port any more (the AMQP side has ended), so nothing waits for a polite end:
// the pending operations are dropped with the io_context, and with them the connections.
void AmqpRelay::Impl::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void AmqpRelay::Impl::accept() {
  acceptor_.async_accept([this](ErrorCode ec, tcp::socket loopback) {
    if (ec == asio::error::operation_aborted) return;
    if (ec) {
      logger().warn("eventhubs_relay_accept_failed", {{"error", ec.message()}});
    } else {
      const std::uint64_t id = ++accepted_;
      ErrorCode ignored;
      loopback.set_option(tcp::no_delay(true), ignored);
      {
        MutexLock lock(mutex_);
        latest_ = id;
        stage_ = "starting";
        failure_.reset();
      }
      open_path(id, std::move(loopback));
    }
    accept();
  });
}

void AmqpRelay::Impl::open_path(std::uint64_t id, tcp::socket loopback) {
  if (options_.websocket && options_.tls) {
    std::make_shared<OutboundPath<TlsWebSocket>>(*this, id, std::move(loopback))->start();
  } else if (options_.websocket) {
    std::make_shared<OutboundPath<PlainWebSocket>>(*this, id, std::move(loopback))->start();
  } else if (options_.tls) {
    std::make_shared<OutboundPath<TlsStream>>(*this, id, std::move(loopback))->start();
  } else {
    std::make_shared<OutboundPath<PlainStream>>(*this, id, std::move(loopback))->start();
  }
}

void AmqpRelay::Impl::stage(std::uint64_t id, std::string what) {
  MutexLock lock(mutex_);
  if (id == latest_) stage_ = std::move(what);
}

void AmqpRelay::Impl::failed(std::uint64_t id, std::string why) {
  MutexLock lock(mutex_);
  if (id == latest_ && !failure_) failure_ = std::move(why);
}

void AmqpRelay::Impl::opened(std::uint64_t id) {
  MutexLock lock(mutex_);
  if (id == latest_) stage_.clear();
}

std::optional<std::string> AmqpRelay::Impl::problem() const {
  MutexLock lock(mutex_);
  if (failure_) return failure_;
  if (!stage_.empty()) {
    return fmt::format("the {} was still {}", options_.websocket ? "WebSocket relay" : "relay", stage_);
  }
  return std::nullopt;
}

AmqpRelay::AmqpRelay(AmqpRelayOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
AmqpRelay::~AmqpRelay() { stop(); }
std::uint16_t AmqpRelay::port() const { return impl_->port(); }
const AmqpRelayOptions& AmqpRelay::options() const { return impl_->options(); }
void AmqpRelay::start() { impl_->start(); }
void AmqpRelay::stop() { impl_->stop(); }
std::optional<std::string> AmqpRelay::problem() const { return impl_->problem(); }
std::string AmqpRelay::describe() const { return impl_->describe(); }

}  // namespace connector
