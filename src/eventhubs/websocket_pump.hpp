#pragma once
// AMQP over WebSockets as Event Hubs speaks it (the path, the subprotocol), and the pump that moves
// bytes between a TCP socket and a WebSocket: the connector's relay and fake-eventhubs' WebSocket
// listener are its two ends.
#include <fmt/format.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace connector {

/// The names both ends of the WebSocket transport use (`using namespace` it in a .cpp, never in a header).
namespace websocket_transport {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using ErrorCode = boost::system::error_code;
/// ws:// and wss://, each over a beast::tcp_stream (which keeps the timeouts of the steps before the
/// upgrade).
using PlainWebSocket = websocket::stream<beast::tcp_stream>;
using TlsWebSocket = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
}  // namespace websocket_transport

/// Where Event Hubs takes AMQP over WebSockets, on its HTTPS port.
inline constexpr std::string_view kAmqpWebSocketPath = "/$servicebus/websocket";
/// The WebSocket subprotocol of AMQP 1.0 (OASIS "AMQP WebSocket Binding"), which the service requires.
inline constexpr std::string_view kAmqpWebSocketProtocol = "AMQPWSB10";

/// Moves bytes both ways between a TCP socket and an open WebSocket until either side ends: what the
/// TCP side sends goes out as one binary message per read; the payload of any message that comes in
/// goes to the TCP side as it is. AMQP frames its own bytes, so message boundaries mean nothing.
///
/// Threads: everything runs on the one thread that runs the sockets' io_context (an SSL stream must
/// not be read and written from two threads). It keeps itself alive through its pending operations.
template <class WebSocket>
class WebSocketPump : public std::enable_shared_from_this<WebSocketPump<WebSocket>> {
 public:
  /// How the pump ended: `tcp_first` when the TCP side's peer hung up first and the WebSocket was then
  /// closed; otherwise `websocket` says how the WebSocket ended (the peer's close code, or the error).
  struct End {
    bool tcp_first = false;
    std::string websocket;
  };
  using Done = std::function<void(const End&)>;

  WebSocketPump(boost::asio::ip::tcp::socket tcp, WebSocket websocket, Done done)
      : tcp_(std::move(tcp)), websocket_(std::move(websocket)), done_(std::move(done)) {
    websocket_.binary(true);
    // One frame per message: AMQP needs no fragments, and the service takes whatever size comes.
    websocket_.auto_fragment(false);
    websocket_.read_message_max(0);  // read piece by piece: a large message costs no memory here
  }

  void start() {
    read_tcp();
    read_websocket();
  }

 private:
  using ErrorCode = boost::system::error_code;

  void read_tcp() {
    tcp_.async_read_some(
        boost::asio::buffer(up_),
        [self = this->shared_from_this()](ErrorCode ec, std::size_t n) { self->on_tcp_read(ec, n); });
  }

  void on_tcp_read(ErrorCode ec, std::size_t n) {
    if (ec) return close_websocket();  // the TCP peer is done (EOF) or gone
    websocket_.async_write(boost::asio::buffer(up_.data(), n),
                           [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
                             if (write_error) return self->end(write_error);
                             self->read_tcp();
                           });
  }

  void read_websocket() {
    websocket_.async_read_some(
        boost::asio::buffer(down_),
        [self = this->shared_from_this()](ErrorCode ec, std::size_t n) { self->on_websocket_read(ec, n); });
  }

  void on_websocket_read(ErrorCode ec, std::size_t n) {
    if (ec) return end(ec);  // also the answer to our own close: error::closed
    boost::asio::async_write(tcp_, boost::asio::buffer(down_.data(), n),
                             [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
                               if (write_error) return self->close_websocket();
                               self->read_websocket();
                             });
  }

  /// The TCP side is done: closes the WebSocket politely; the read loop ends when the peer answers.
  void close_websocket() {
    if (closing_ || ended_) return;
    closing_ = true;
    websocket_.async_close(boost::beast::websocket::close_code::normal,
                           [self = this->shared_from_this()](ErrorCode ec) {
                             if (ec) self->end(ec);
                           });
  }

  void end(ErrorCode ec) {
    if (ended_) return;
    ended_ = true;
    ErrorCode ignored;
    tcp_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    tcp_.close(ignored);
    boost::beast::get_lowest_layer(websocket_).close();
    done_(End{closing_, closing_ ? std::string() : describe(ec)});
  }

  std::string describe(ErrorCode ec) const {
    if (ec != boost::beast::websocket::error::closed) return ec.message();
    const auto& reason = websocket_.reason();
    return fmt::format("the peer closed the WebSocket (code {}{}{})", static_cast<unsigned>(reason.code),
                       reason.reason.empty() ? "" : ": ",
                       std::string_view(reason.reason.data(), reason.reason.size()));
  }

  boost::asio::ip::tcp::socket tcp_;
  WebSocket websocket_;
  Done done_;
  std::array<char, 65536> up_{};    // TCP → WebSocket
  std::array<char, 65536> down_{};  // WebSocket → TCP
  bool closing_ = false;            // the TCP side ended first; the WebSocket close is under way
  bool ended_ = false;
};

}  // namespace connector
