#pragma once
// The byte streams AMQP to Event Hubs travels on — AMQP's own TCP or TLS stream, a WebSocket over either
// — and the names of AMQP's WebSocket binding; the connector's AmqpIoLoop and fake-eventhubs' WebSocket
// listener are their two ends.
#include <fmt/format.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace connector {

/// The names both ends of a connection use (`using namespace` it in a .cpp, never in a header).
namespace amqp_streams {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = boost::asio::ip::tcp;
using ErrorCode = boost::system::error_code;
/// AMQP's own byte stream: amqp:// and amqps://.
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
/// ws:// and wss://, each over a beast::tcp_stream (which keeps the timeouts of the steps before the
/// upgrade).
using PlainWebSocket = websocket::stream<PlainStream>;
using TlsWebSocket = websocket::stream<TlsStream>;

template <class Remote>
inline constexpr bool kIsWebSocket =
    std::is_same_v<Remote, PlainWebSocket> || std::is_same_v<Remote, TlsWebSocket>;
template <class Remote>
inline constexpr bool kIsTls = std::is_same_v<Remote, TlsStream> || std::is_same_v<Remote, TlsWebSocket>;

/// How a read or write on `remote` ended, in words: the peer's WebSocket close (code and reason), the
/// peer's end of a plain stream, or the error itself.
template <class Remote>
std::string describe_end(const Remote& remote, ErrorCode ec) {
  if constexpr (kIsWebSocket<Remote>) {
    if (ec == websocket::error::closed) {
      const auto& reason = remote.reason();
      return fmt::format("the peer closed the WebSocket (code {}{}{})", static_cast<unsigned>(reason.code),
                         reason.reason.empty() ? "" : ": ",
                         std::string_view(reason.reason.data(), reason.reason.size()));
    }
  } else if (ec == asio::error::eof) {
    return "the peer closed the connection";
  }
  return ec.message();
}

/// How much of a message a client's WebSocket masks and hands to the socket at once. A client must mask
/// what it sends, and Beast masks through a write buffer of this size, one socket write per buffer-full:
/// its default of 4 KB made a 250 KB batch of events some sixty system calls.
inline constexpr std::size_t kClientWriteBuffer = 64 * 1024;

/// Sets up the connector's (client) end of a WebSocket before its handshake, when Beast still takes
/// the write buffer's size.
template <class WebSocket>
void prepare_client(WebSocket& socket) {
  socket.write_buffer_bytes(kClientWriteBuffer);
}

/// Sets a WebSocket up for AMQP: binary messages, one frame per message (AMQP needs no fragments, and the
/// service takes whatever size comes), read piece by piece (a large message costs no memory).
template <class WebSocket>
void carry_amqp(WebSocket& socket) {
  socket.binary(true);
  socket.auto_fragment(false);
  socket.read_message_max(0);
}
}  // namespace amqp_streams

/// Where Event Hubs takes AMQP over WebSockets, on its HTTPS port.
inline constexpr std::string_view kAmqpWebSocketPath = "/$servicebus/websocket";
/// The WebSocket subprotocol of AMQP 1.0 (OASIS "AMQP WebSocket Binding"), which the service requires.
inline constexpr std::string_view kAmqpWebSocketProtocol = "AMQPWSB10";

}  // namespace connector
