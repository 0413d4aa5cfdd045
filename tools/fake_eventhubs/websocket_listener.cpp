#include "websocket_listener.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "relay_pump.hpp"
#include "observability/logger.hpp"

namespace connector {

namespace {

using namespace amqp_streams;

constexpr std::chrono::seconds kHandshakeTimeout{30};

/// True when a Sec-WebSocket-Protocol list ("a, b") offers `protocol`.
bool offers(std::string_view list, std::string_view protocol) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    auto item = list.substr(0, comma);
    while (item.starts_with(' ')) item.remove_prefix(1);
    while (item.ends_with(' ')) item.remove_suffix(1);
    if (item == protocol) return true;
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return false;
}

}  // namespace

class WebSocketListener::Impl {
 public:
  explicit Impl(const Options& options);

  asio::io_context& io() { return io_; }
  asio::ssl::context& tls() { return tls_; }
  std::uint16_t port() const { return port_; }
  std::uint16_t amqp_port() const { return amqp_port_; }
  void start();
  void stop();

 private:
  void accept(tcp::acceptor& acceptor);

  const bool use_tls_;
  const std::uint16_t amqp_port_;
  asio::ssl::context tls_{asio::ssl::context::tls_server};  // outlives the connections' TLS streams
  asio::io_context io_{1};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

namespace {

/// One client: TLS (wss://), the HTTP upgrade request checked as the service checks it, the upgrade,
/// then a RelayPump to the broker's loopback AMQP listener.
template <class WebSocket>
class Upgrade : public std::enable_shared_from_this<Upgrade<WebSocket>> {
 public:
  static constexpr bool kTls = std::is_same_v<WebSocket, TlsWebSocket>;

  Upgrade(WebSocketListener::Impl& listener, tcp::socket client)
      : listener_(listener), peer_(peer_of(client)), websocket_(make_stream(listener, std::move(client))) {}

  void start() {
    beast::get_lowest_layer(websocket_).expires_after(kHandshakeTimeout);
    if constexpr (kTls) {
      websocket_.next_layer().async_handshake(asio::ssl::stream_base::server,
                                              [self = this->shared_from_this()](ErrorCode ec) {
                                                if (ec) return self->give_up("tls_handshake_failed", ec);
                                                self->read_request();
                                              });
    } else {
      read_request();
    }
  }

 private:
  static std::string peer_of(const tcp::socket& socket) {
    ErrorCode ec;
    const auto endpoint = socket.remote_endpoint(ec);
    return ec ? std::string("unknown")
              : fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
  }

  static WebSocket make_stream(WebSocketListener::Impl& listener, tcp::socket client) {
    if constexpr (kTls) {
      return WebSocket(beast::tcp_stream(std::move(client)), listener.tls());
    } else {
      return WebSocket(beast::tcp_stream(std::move(client)));
    }
  }

  void give_up(const char* what, ErrorCode ec) {
    logger().info("websocket_failed", {{"peer", peer_}, {"step", what}, {"error", ec.message()}});
  }

  void read_request() {
    http::async_read(websocket_.next_layer(), buffer_, request_,
                     [self = this->shared_from_this()](ErrorCode ec, std::size_t) {
                       if (ec) return self->give_up("read_request", ec);
                       self->check_request();
                     });
  }

  void check_request() {
    const std::string path(request_.target());
    const std::string protocols(request_[http::field::sec_websocket_protocol]);
    if (!websocket::is_upgrade(request_)) return refuse(http::status::bad_request, "not a WebSocket upgrade");
    if (path != kAmqpWebSocketPath) return refuse(http::status::not_found, "no such path");
    if (!offers(protocols, kAmqpWebSocketProtocol)) {
      return refuse(http::status::bad_request, "the subprotocol AMQPWSB10 is required");
    }
    beast::get_lowest_layer(websocket_).expires_never();  // the WebSocket keeps its own time from here
    websocket_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    websocket_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
      response.set(http::field::sec_websocket_protocol, kAmqpWebSocketProtocol);
    }));
    websocket_.async_accept(request_, [self = this->shared_from_this()](ErrorCode ec) {
      if (ec) return self->give_up("accept", ec);
      self->connect_broker();
    });
  }

  void refuse(http::status status, const char* why) {
    logger().info("websocket_refused",
                  {{"peer", peer_},
                   {"path", std::string(request_.target())},
                   {"protocol", std::string(request_[http::field::sec_websocket_protocol])},
                   {"status", static_cast<unsigned>(status)},
                   {"reason", why}});
    response_.result(status);
    response_.version(request_.version());
    response_.set(http::field::content_type, "text/plain");
    response_.keep_alive(false);
    response_.body() = why;
    response_.prepare_payload();
    http::async_write(websocket_.next_layer(), response_,
                      [self = this->shared_from_this()](ErrorCode, std::size_t) {
                        beast::get_lowest_layer(self->websocket_).close();
                      });
  }

  void connect_broker() {
    broker_.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), listener_.amqp_port()),
                          [self = this->shared_from_this()](ErrorCode ec) {
                            if (ec) return self->give_up("connect_broker", ec);
                            self->relay();
                          });
  }

  void relay() {
    logger().info("websocket_accepted", {{"peer", peer_}, {"tls", kTls}});
    ErrorCode ignored;
    broker_.set_option(tcp::no_delay(true), ignored);
    std::make_shared<RelayPump<WebSocket>>(
        std::move(broker_), std::move(websocket_),
        [peer = peer_](const typename RelayPump<WebSocket>::End& end) {
          logger().info(
              "websocket_closed",
              {{"peer", peer}, {"by", end.tcp_first ? "broker" : "client"}, {"reason", end.remote}});
        })
        ->start();
  }

  WebSocketListener::Impl& listener_;
  const std::string peer_;
  WebSocket websocket_;
  tcp::socket broker_{listener_.io()};
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

WebSocketListener::Impl::Impl(const Options& options)
    : use_tls_(!options.tls_cert_file.empty() && !options.tls_key_file.empty()),
      amqp_port_(options.amqp_port) {
  if (use_tls_) {
    tls_.use_certificate_chain_file(options.tls_cert_file);
    tls_.use_private_key_file(options.tls_key_file, asio::ssl::context::pem);
  }
  // Like the AMQP listener: every address the name resolves to, on one port (the first one's when 0).
  tcp::resolver resolver(io_);
  const auto addresses = resolver.resolve(options.host, std::to_string(options.port), tcp::resolver::passive);
  for (const auto& entry : addresses) {
    tcp::endpoint endpoint = entry.endpoint();
    if (port_ != 0) endpoint.port(port_);
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    acceptor->open(endpoint.protocol());
    acceptor->set_option(asio::socket_base::reuse_address(true));
    if (endpoint.protocol() == tcp::v6()) acceptor->set_option(asio::ip::v6_only(true));
    acceptor->bind(endpoint);
    acceptor->listen();
    port_ = acceptor->local_endpoint().port();
    acceptors_.push_back(std::move(acceptor));
  }
  if (acceptors_.empty()) throw std::runtime_error("no address to listen on for " + options.host);
}

void WebSocketListener::Impl::start() {
  for (auto& acceptor : acceptors_) accept(*acceptor);
  thread_ = std::thread([this] { io_.run(); });
}

// A test stops the server to cut its clients off; nothing waits for a polite end.
void WebSocketListener::Impl::stop() {
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void WebSocketListener::Impl::accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](ErrorCode ec, tcp::socket client) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      ErrorCode ignored;
      client.set_option(tcp::no_delay(true), ignored);
      if (use_tls_) {
        std::make_shared<Upgrade<TlsWebSocket>>(*this, std::move(client))->start();
      } else {
        std::make_shared<Upgrade<PlainWebSocket>>(*this, std::move(client))->start();
      }
    }
    accept(acceptor);
  });
}

WebSocketListener::WebSocketListener(const Options& options) : impl_(std::make_unique<Impl>(options)) {}
WebSocketListener::~WebSocketListener() { stop(); }
std::uint16_t WebSocketListener::port() const { return impl_->port(); }
void WebSocketListener::start() { impl_->start(); }
void WebSocketListener::stop() { impl_->stop(); }

}  // namespace connector
