#include "eventhubs/amqp_io.hpp"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>
#include <proton/error_condition.hpp>
#include <proton/io/connection_driver.hpp>
#include <proton/timestamp.hpp>
#include <string_view>
#include <vector>

#include "common/errors.hpp"
#include "config/host_port.hpp"
#include "core/json_writer.hpp"
#include "eventhubs/amqp_streams.hpp"
#include "eventhubs/batch_format_stamp.hpp"
#include "observability/build_info.hpp"
#include "observability/logger.hpp"

namespace connector {

namespace {

using namespace amqp_streams;

bool is_ip_address(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string user_agent() { return fmt::format("redis-eventhubs-connector/{}", build_version()); }

/// Ends Proton's transport with `why` (on_transport_error) and hands it the events that follow.
void disconnect(proton::io::connection_driver& driver, const std::string& why) {
  driver.disconnected(proton::error_condition("amqp:connection:framing-error", why));
  driver.dispatch();
}

/// What the loop does with a connection whose way is open: let it work after each piece of work.
class OpenConnection {
 public:
  virtual ~OpenConnection() = default;
  /// Hands Proton's events to the handler and writes what Proton has to send.
  virtual void process() = 0;
};

}  // namespace

/// The loop's state: the io_context, the TLS context, the open connections and what the latest
/// connection's way reports. Loop thread only, but for post() and stop().
class AmqpIoLoop::Impl {
 public:
  explicit Impl(AmqpPathOptions options);

  const AmqpPathOptions& options() const { return options_; }
  asio::io_context& io() { return io_; }
  asio::ssl::context& tls() { return tls_; }
  /// "host:port" of the Event Hubs end.
  const std::string& target() const { return target_; }
  std::string describe() const;

  void run();
  void stop() { io_.stop(); }
  void post(std::function<void()> fn);
  void schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  proton::connection connect(const proton::connection_options& options);
  /// Every open connection's events and output, after work that may have touched them.
  void process_all();

  // ---- what a connection reports about its way out ----
  void stage(std::uint64_t id, std::string what);
  void failed(std::uint64_t id, std::string why);
  void opened(std::uint64_t id);
  void adopt(const std::shared_ptr<OpenConnection>& connection) { open_.push_back(connection); }

  std::optional<std::string> problem() const;

 private:
  const AmqpPathOptions options_;
  const std::string target_;
  const std::string container_id_;
  asio::ssl::context tls_{asio::ssl::context::tls_client};  // outlives the connections' TLS streams
  asio::io_context io_{1};
  // The connections live in their pending operations; the loop only looks at them between those.
  std::vector<std::weak_ptr<OpenConnection>> open_;
  std::uint64_t connections_ = 0;
  std::uint64_t latest_ = 0;  // the connection problem() is about
  std::string stage_;         // its step on the way out; empty once open
  std::optional<std::string> failure_;
};

namespace {

/// Moves bytes between an open remote end (one of amqp_streams' streams) and a Proton
/// connection_driver until either ends: what the service sends goes into the driver's read buffer, what
/// the driver has to write goes out (through a BatchFormatStamp with `stamp_batches`, and the service's
/// bytes then through a MaxFrameHeadroom). Towards a WebSocket, each write is one binary message; the
/// payload of any message that comes in is read as it is (AMQP frames its own bytes).
///
/// Proton's buffers may move whenever the driver is called, so reads land in a buffer of ours first and
/// writes go from a copy (which the stamp makes anyway).
template <class Remote>
class DriverPump : public OpenConnection, public std::enable_shared_from_this<DriverPump<Remote>> {
 public:
  static constexpr bool kWebSocket = kIsWebSocket<Remote>;
  static constexpr const char* kWhat = kWebSocket ? "WebSocket" : "connection";

  DriverPump(AmqpIoLoop::Impl& loop, std::uint64_t id, std::shared_ptr<proton::io::connection_driver> driver,
             Remote remote, bool stamp_batches)
      : loop_(loop), id_(id), driver_(std::move(driver)), remote_(std::move(remote)) {
    if (stamp_batches) {
      stamp_.emplace();
      headroom_.emplace();
    }
    if constexpr (kWebSocket) carry_amqp(remote_);
  }

  void start() {
    read();
    process();
  }

  void process() override {
    if (ended_) return;
    // Heartbeats, and the peer's idle timeout: the loop's work comes at least every tick of the handler.
    driver_->tick(proton::timestamp::now());
    if (!driver_->dispatch()) {  // AMQP is done both ways: once its last bytes are written, so is this
      if (!writing_) close();
      return;
    }
    write();
  }

 private:
  void read() {
    remote_.async_read_some(asio::buffer(in_), [self = this->shared_from_this()](
                                                   ErrorCode ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(ErrorCode ec, std::size_t n) {
    if (ended_) return;
    if (ec)
      return lost(describe_end(remote_, ec));  // also the answer to our own WebSocket close: error::closed
    std::string_view bytes(in_.data(), n);
    if (headroom_) {
      roomy_.clear();
      try {
        headroom_->process(bytes, roomy_);
      } catch (const EventHubsError& e) {
        return unreadable(
            fmt::format("the service's bytes are not AMQP as the batch stamp reads it ({})", e.what()));
      }
      bytes = roomy_;
    }
    while (!bytes.empty()) {
      const proton::io::mutable_buffer room = driver_->read_buffer();
      if (room.size == 0) break;  // Proton reads nothing more on this connection (it is closing)
      const std::size_t taken = std::min(room.size, bytes.size());
      std::memcpy(room.data, bytes.data(), taken);
      driver_->read_done(taken);
      bytes.remove_prefix(taken);
    }
    process();
    if (!ended_) read();
  }

  void write() {
    if (writing_ || ended_) return;
    const proton::io::const_buffer pending = driver_->write_buffer();
    if (pending.size == 0) return;
    out_.clear();
    const std::string_view bytes(pending.data, pending.size);
    if (stamp_) {
      try {
        stamp_->process(bytes, out_);
      } catch (const EventHubsError& e) {
        return unreadable(
            fmt::format("Proton's bytes are not AMQP as the batch stamp reads it ({})", e.what()));
      }
    } else {
      out_.assign(bytes);
    }
    driver_->write_done(pending.size);
    if (out_.empty()) return;  // the stamp holds a frame's head until the rest of it comes
    writing_ = true;
    auto written = [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
      self->writing_ = false;
      if (self->ended_) return;
      if (ec) return self->lost(describe_end(self->remote_, ec));
      self->process();
    };
    if constexpr (kWebSocket) {
      remote_.async_write(asio::buffer(out_), std::move(written));
    } else {
      asio::async_write(remote_, asio::buffer(out_), std::move(written));
    }
  }

  /// Proton has ended the connection (close performatives both ways, its output written). A WebSocket
  /// is closed politely; AMQP's own byte stream needs no ceremony.
  void close() {
    if (ended_) return;
    ended_ = true;
    if constexpr (kWebSocket) {
      remote_.async_close(websocket::close_code::normal,
                          [self = this->shared_from_this()](ErrorCode) { self->drop(); });
    } else {
      drop();
    }
  }

  /// The way ended under Proton: it learns why (on_transport_error), the loop keeps it for problem().
  void lost(const std::string& why) {
    give_up(fmt::format("the {} to {} ended: {}", kWhat, loop_.target(), why));
  }

  /// Bytes the stamp or the headroom cannot read: the connection cannot go on.
  void unreadable(const std::string& why) {
    give_up(fmt::format("dropped the {} to {}: {}", kWhat, loop_.target(), why));
  }

  void give_up(const std::string& reason) {
    if (ended_) return;
    ended_ = true;
    loop_.failed(id_, reason);
    drop();
    disconnect(*driver_, reason);
  }

  void drop() {
    ErrorCode ignored;
    beast::get_lowest_layer(remote_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(remote_).close();
  }

  AmqpIoLoop::Impl& loop_;
  const std::uint64_t id_;
  const std::shared_ptr<proton::io::connection_driver> driver_;
  Remote remote_;
  std::optional<BatchFormatStamp> stamp_;     // Proton → service, with stamp_batches
  std::optional<MaxFrameHeadroom> headroom_;  // service → Proton, with stamp_batches
  std::array<char, 65536> in_{};              // from the service
  std::string roomy_;                         // in_ after the headroom
  std::string out_;                           // Proton's output (stamped) while it is written
  bool writing_ = false;
  bool ended_ = false;
};

/// One connection's way out: resolve, TCP, CONNECT through the proxy, TLS, the WebSocket upgrade (each
/// when asked for); then a DriverPump carries the bytes. Every step reports to the loop, which keeps the
/// latest connection's story for the AMQP side.
template <class Remote>
class OutboundPath : public std::enable_shared_from_this<OutboundPath<Remote>> {
 public:
  static constexpr bool kTls = kIsTls<Remote>;
  static constexpr bool kWebSocket = kIsWebSocket<Remote>;

  OutboundPath(AmqpIoLoop::Impl& loop, std::uint64_t id,
               std::shared_ptr<proton::io::connection_driver> driver)
      : loop_(loop),
        options_(loop.options()),
        id_(id),
        driver_(std::move(driver)),
        remote_(make_stream(loop)) {}

  void start() {
    const auto& proxy = options_.proxy;
    const std::string host = proxy ? proxy->host : options_.host;
    const std::uint16_t port = proxy ? proxy->port : options_.port;
    loop_.stage(id_, fmt::format("resolving {}", next_hop()));
    resolver_.async_resolve(
        host, std::to_string(port),
        [self = this->shared_from_this()](ErrorCode ec, tcp::resolver::results_type results) {
          self->on_resolved(ec, std::move(results));
        });
  }

 private:
  static Remote make_stream(AmqpIoLoop::Impl& loop) {
    if constexpr (kTls) {
      return Remote(loop.io(), loop.tls());
    } else {
      return Remote(loop.io());
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
    return options_.proxy ? fmt::format("the proxy {}", options_.proxy->authority()) : loop_.target();
  }

  std::string error_text(ErrorCode ec) const {
    if (ec == beast::error::timeout)
      return fmt::format("no answer within {} ms", options_.setup_timeout.count());
    return ec.message();
  }

  void on_resolved(ErrorCode ec, tcp::resolver::results_type results) {
    if (ec) return fail(fmt::format("could not resolve {}: {}", next_hop(), error_text(ec)));
    loop_.stage(id_, fmt::format("connecting to {}", next_hop()));
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
    loop_.stage(
        id_, fmt::format("waiting for the proxy {} to answer CONNECT {}", proxy.authority(), loop_.target()));
    request_.method(http::verb::connect);
    request_.target(loop_.target());
    request_.version(11);
    request_.set(http::field::host, loop_.target());
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
                              loop_.target(), error_text(ec)));
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
                      proxy.authority(), loop_.target(), status, reason));
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
      loop_.stage(id_, fmt::format("waiting for the TLS handshake with {}", loop_.target()));
      SSL* ssl = tls_layer().native_handle();
      // OpenSSL checks the name itself, so that a mismatch comes back as its own verify error.
      const bool named = is_ip_address(options_.host)
                             ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), options_.host.c_str()) == 1
                             : SSL_set_tlsext_host_name(ssl, options_.host.c_str()) == 1 &&
                                   SSL_set1_host(ssl, options_.host.c_str()) == 1;
      if (!named) return fail(fmt::format("TLS with {}: cannot set the name to verify", loop_.target()));
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
                        loop_.target(), why));
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
    loop_.stage(id_, fmt::format("waiting for the WebSocket upgrade of {}", loop_.target()));
    lowest().expires_never();  // the WebSocket keeps its own time from here
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.handshake_timeout = options_.setup_timeout;
    remote_.set_option(timeouts);
    remote_.set_option(websocket::stream_base::decorator([](websocket::request_type& request) {
      request.set(http::field::sec_websocket_protocol, kAmqpWebSocketProtocol);
      request.set(http::field::user_agent, user_agent());
    }));
    prepare_client(remote_);
    const bool default_port = options_.port == (kTls ? 443 : 80);
    const std::string host_header = default_port ? options_.host : loop_.target();
    remote_.async_handshake(upgrade_answer_, host_header, kAmqpWebSocketPath,
                            [self = this->shared_from_this()](ErrorCode ec) { self->on_upgraded(ec); });
  }

  void on_upgraded(ErrorCode ec) {
    const std::string where = fmt::format("{}{}", loop_.target(), kAmqpWebSocketPath);
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
    loop_.opened(id_);
    logger().debug("eventhubs_transport_open", {{"url", loop_.describe()}});
    auto pump = std::make_shared<DriverPump<Remote>>(loop_, id_, std::move(driver_), std::move(remote_),
                                                     options_.stamp_batches);
    loop_.adopt(pump);
    pump->start();
  }

  /// Proton learns that its transport is gone (on_transport_error), and the loop keeps the reason first,
  /// so the handler finds it there.
  void fail(std::string why) {
    logger().debug("eventhubs_transport_failed", {{"error", why}});
    loop_.failed(id_, why);
    lowest().close();
    disconnect(*driver_, why);
  }

  AmqpIoLoop::Impl& loop_;
  const AmqpPathOptions& options_;
  const std::uint64_t id_;
  std::shared_ptr<proton::io::connection_driver> driver_;
  Remote remote_;
  tcp::resolver resolver_{loop_.io()};
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response_parser<http::empty_body> proxy_answer_;
  websocket::response_type upgrade_answer_;
};

}  // namespace

AmqpIoLoop::Impl::Impl(AmqpPathOptions options)
    : options_(std::move(options)),
      target_(join_host_port(options_.host, options_.port)),
      container_id_(fmt::format("redis-eventhubs-connector-{}", ::getpid())) {
  if (options_.tls) {
    ErrorCode ec;
    tls_.set_verify_mode(asio::ssl::verify_peer);
    tls_.set_default_verify_paths(ec);
    if (!ec && !options_.ca_file.empty()) tls_.load_verify_file(options_.ca_file, ec);
    if (ec)
      throw EventHubsError(fmt::format("cannot load the CA certificates for {}: {}", target_, ec.message()));
  }
}

std::string AmqpIoLoop::Impl::describe() const {
  std::string url = options_.websocket
                        ? fmt::format("{}://{}{}", options_.tls ? "wss" : "ws", target_, kAmqpWebSocketPath)
                        : fmt::format("{}://{}", options_.tls ? "amqps" : "amqp", target_);
  if (options_.proxy) url += fmt::format(" via the proxy {}", options_.proxy->authority());
  return url;
}

void AmqpIoLoop::Impl::run() {
  // Nothing may end run() but stop(): between connections there is no pending operation.
  auto guard = asio::make_work_guard(io_);
  io_.run();
}

void AmqpIoLoop::Impl::post(std::function<void()> fn) {
  asio::post(io_, [this, fn = std::move(fn)] {
    fn();
    process_all();
  });
}

void AmqpIoLoop::Impl::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  auto timer = std::make_shared<asio::steady_timer>(io_, delay);
  timer->async_wait([this, timer, fn = std::move(fn)](ErrorCode ec) {
    if (ec) return;
    fn();
    process_all();
  });
}

proton::connection AmqpIoLoop::Impl::connect(const proton::connection_options& options) {
  auto driver = std::make_shared<proton::io::connection_driver>(container_id_);
  driver->connect(options);
  const std::uint64_t id = ++connections_;
  latest_ = id;
  stage_ = "starting";
  failure_.reset();
  if (options_.websocket && options_.tls) {
    std::make_shared<OutboundPath<TlsWebSocket>>(*this, id, driver)->start();
  } else if (options_.websocket) {
    std::make_shared<OutboundPath<PlainWebSocket>>(*this, id, driver)->start();
  } else if (options_.tls) {
    std::make_shared<OutboundPath<TlsStream>>(*this, id, driver)->start();
  } else {
    std::make_shared<OutboundPath<PlainStream>>(*this, id, driver)->start();
  }
  return driver->connection();
}

void AmqpIoLoop::Impl::process_all() {
  std::erase_if(open_, [](const std::weak_ptr<OpenConnection>& open) { return open.expired(); });
  // A handler may open a connection meanwhile (adopt() appends): by index, never by iterator.
  for (std::size_t i = 0; i < open_.size(); ++i) {
    if (auto alive = open_[i].lock()) alive->process();
  }
}

void AmqpIoLoop::Impl::stage(std::uint64_t id, std::string what) {
  if (id == latest_) stage_ = std::move(what);
}

void AmqpIoLoop::Impl::failed(std::uint64_t id, std::string why) {
  if (id == latest_ && !failure_) failure_ = std::move(why);
}

void AmqpIoLoop::Impl::opened(std::uint64_t id) {
  if (id == latest_) stage_.clear();
}

std::optional<std::string> AmqpIoLoop::Impl::problem() const {
  if (failure_) return failure_;
  if (!stage_.empty())
    return fmt::format("the {} was still {}", options_.websocket ? "WebSocket" : "connection", stage_);
  return std::nullopt;
}

AmqpIoLoop::AmqpIoLoop(AmqpPathOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
AmqpIoLoop::~AmqpIoLoop() = default;
const AmqpPathOptions& AmqpIoLoop::options() const { return impl_->options(); }
std::string AmqpIoLoop::describe() const { return impl_->describe(); }
void AmqpIoLoop::run() { impl_->run(); }
void AmqpIoLoop::stop() { impl_->stop(); }
void AmqpIoLoop::post(std::function<void()> fn) { impl_->post(std::move(fn)); }
void AmqpIoLoop::schedule(std::chrono::milliseconds delay, std::function<void()> fn) {
  impl_->schedule(delay, std::move(fn));
}
proton::connection AmqpIoLoop::connect(const proton::connection_options& options) {
  return impl_->connect(options);
}
std::optional<std::string> AmqpIoLoop::problem() const { return impl_->problem(); }

}  // namespace connector
