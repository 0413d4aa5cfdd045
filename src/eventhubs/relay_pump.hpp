#pragma once
// The pump that moves bytes between a TCP socket and the way to the other end of an AMQP connection — a
// WebSocket (AMQP over WebSockets as Event Hubs speaks it: the path, the subprotocol) or a TCP or TLS
// stream — and the names its users share: the connector's relay and fake-eventhubs' WebSocket listener
// are its two ends.
#include <fmt/format.h>

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "common/errors.hpp"
#include "eventhubs/batch_format_stamp.hpp"

namespace connector {

/// The names both ends of a relayed connection use (`using namespace` it in a .cpp, never in a header).
namespace relay_transport {
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
}  // namespace relay_transport

/// Where Event Hubs takes AMQP over WebSockets, on its HTTPS port.
inline constexpr std::string_view kAmqpWebSocketPath = "/$servicebus/websocket";
/// The WebSocket subprotocol of AMQP 1.0 (OASIS "AMQP WebSocket Binding"), which the service requires.
inline constexpr std::string_view kAmqpWebSocketProtocol = "AMQPWSB10";

/// Moves bytes both ways between a TCP socket and an open remote end (one of relay_transport's streams)
/// until either side ends. Towards a WebSocket, what the TCP side sends goes out as one binary message
/// per read, and the payload of any message that comes in goes to the TCP side as it is: AMQP frames its
/// own bytes, so message boundaries mean nothing. With `stamp_batches`, the bytes from the TCP side (an
/// AMQP client's) pass through a BatchFormatStamp and the remote's through a MaxFrameHeadroom.
///
/// Threads: everything runs on the one thread that runs the sockets' io_context (an SSL stream must
/// not be read and written from two threads). It keeps itself alive through its pending operations.
template <class Remote>
class RelayPump : public std::enable_shared_from_this<RelayPump<Remote>> {
 public:
  static constexpr bool kWebSocket = relay_transport::kIsWebSocket<Remote>;

  /// How the pump ended: `tcp_first` when the TCP side's peer hung up first and the remote end was then
  /// closed; otherwise `remote` says how the remote end ended (the peer's close code, or the error), or
  /// `unreadable` why the AMQP bytes of one side could not be read for the stamp (both were then closed).
  struct End {
    bool tcp_first = false;
    std::string remote;
    std::string unreadable;
  };
  using Done = std::function<void(const End&)>;

  RelayPump(boost::asio::ip::tcp::socket tcp, Remote remote, Done done, bool stamp_batches = false)
      : tcp_(std::move(tcp)), remote_(std::move(remote)), done_(std::move(done)) {
    if (stamp_batches) {
      stamp_.emplace();
      headroom_.emplace();
    }
    if constexpr (kWebSocket) {
      remote_.binary(true);
      // One frame per message: AMQP needs no fragments, and the service takes whatever size comes.
      remote_.auto_fragment(false);
      remote_.read_message_max(0);  // read piece by piece: a large message costs no memory here
    }
  }

  void start() {
    read_tcp();
    read_remote();
  }

 private:
  using ErrorCode = boost::system::error_code;

  void read_tcp() {
    tcp_.async_read_some(
        boost::asio::buffer(up_),
        [self = this->shared_from_this()](ErrorCode ec, std::size_t n) { self->on_tcp_read(ec, n); });
  }

  void on_tcp_read(ErrorCode ec, std::size_t n) {
    if (ec) return close_remote();  // the TCP peer is done (EOF) or gone
    const auto bytes = edit(stamp_, std::string_view(up_.data(), n), stamped_, "the AMQP client's");
    if (!bytes) return;
    if (bytes->empty()) return read_tcp();  // the stamp holds a frame's head until the rest of it comes
    auto written = [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
      if (write_error) return self->end(write_error);
      self->read_tcp();
    };
    if constexpr (kWebSocket) {
      remote_.async_write(boost::asio::buffer(bytes->data(), bytes->size()), std::move(written));
    } else {
      boost::asio::async_write(remote_, boost::asio::buffer(bytes->data(), bytes->size()),
                               std::move(written));
    }
  }

  void read_remote() {
    remote_.async_read_some(
        boost::asio::buffer(down_),
        [self = this->shared_from_this()](ErrorCode ec, std::size_t n) { self->on_remote_read(ec, n); });
  }

  void on_remote_read(ErrorCode ec, std::size_t n) {
    if (ec) return end(ec);  // also the answer to our own WebSocket close: error::closed
    const auto bytes = edit(headroom_, std::string_view(down_.data(), n), roomy_, "the service's");
    if (!bytes) return;
    if (bytes->empty()) return read_remote();
    boost::asio::async_write(tcp_, boost::asio::buffer(bytes->data(), bytes->size()),
                             [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
                               if (write_error) return self->close_remote();
                               self->read_remote();
                             });
  }

  /// What goes on of `in`: itself, or with an `editor`, what it makes of it (in `out`); nullopt, and the
  /// pump ended, when the editor cannot read it.
  template <class Editor>
  std::optional<std::string_view> edit(std::optional<Editor>& editor, std::string_view in, std::string& out,
                                       const char* whose) {
    if (!editor) return in;
    out.clear();
    try {
      editor->process(in, out);
    } catch (const EventHubsError& e) {
      unreadable_ = fmt::format("{} bytes are not AMQP as the batch stamp reads it ({})", whose, e.what());
      end(ErrorCode());
      return std::nullopt;
    }
    return std::string_view(out);
  }

  /// The TCP side is done. A WebSocket is closed politely: the read loop ends when the peer answers.
  /// AMQP's own byte stream needs no ceremony: the client has ended the AMQP connection itself (close
  /// performatives both ways), and what it sent is written by now.
  void close_remote() {
    if (closing_ || ended_) return;
    closing_ = true;
    if constexpr (kWebSocket) {
      remote_.async_close(boost::beast::websocket::close_code::normal,
                          [self = this->shared_from_this()](ErrorCode ec) {
                            if (ec) self->end(ec);
                          });
    } else {
      end(ErrorCode());
    }
  }

  void end(ErrorCode ec) {
    if (ended_) return;
    ended_ = true;
    ErrorCode ignored;
    tcp_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    tcp_.close(ignored);
    boost::beast::get_lowest_layer(remote_).close();
    End how;
    if (!unreadable_.empty()) {
      how.unreadable = unreadable_;
    } else if (closing_) {
      how.tcp_first = true;
    } else {
      how.remote = describe(ec);
    }
    done_(how);
  }

  std::string describe(ErrorCode ec) const {
    if constexpr (kWebSocket) {
      if (ec == boost::beast::websocket::error::closed) {
        const auto& reason = remote_.reason();
        return fmt::format("the peer closed the WebSocket (code {}{}{})", static_cast<unsigned>(reason.code),
                           reason.reason.empty() ? "" : ": ",
                           std::string_view(reason.reason.data(), reason.reason.size()));
      }
    } else if (ec == boost::asio::error::eof) {
      return "the peer closed the connection";
    }
    return ec.message();
  }

  boost::asio::ip::tcp::socket tcp_;
  Remote remote_;
  Done done_;
  std::optional<BatchFormatStamp> stamp_;     // TCP → remote, with stamp_batches
  std::optional<MaxFrameHeadroom> headroom_;  // remote → TCP, with stamp_batches
  std::array<char, 65536> up_{};              // TCP → remote
  std::array<char, 65536> down_{};            // remote → TCP
  std::string stamped_;                       // up_ after the stamp
  std::string roomy_;                         // down_ after the headroom
  std::string unreadable_;                    // why the stamp or the headroom gave up
  bool closing_ = false;                      // the TCP side ended first; the remote close is under way
  bool ended_ = false;
};

}  // namespace connector
