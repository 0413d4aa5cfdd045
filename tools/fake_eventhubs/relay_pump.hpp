#pragma once
// fake-eventhubs' WebSocket listener: the pump that moves bytes between the broker's plain AMQP socket
// and a client's WebSocket.
#include <fmt/format.h>

#include <array>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "eventhubs/amqp_streams.hpp"

namespace connector {

/// Moves bytes both ways between a TCP socket and an open remote end (one of amqp_streams's streams)
/// until either side ends. Towards a WebSocket, what the TCP side sends goes out as one binary message
/// per read, and the payload of any message that comes in goes to the TCP side as it is: AMQP frames its
/// own bytes, so message boundaries mean nothing.
///
/// Threads: everything runs on the one thread that runs the sockets' io_context (an SSL stream must
/// not be read and written from two threads). It keeps itself alive through its pending operations.
template <class Remote>
class RelayPump : public std::enable_shared_from_this<RelayPump<Remote>> {
 public:
  static constexpr bool kWebSocket = amqp_streams::kIsWebSocket<Remote>;

  /// How the pump ended: `tcp_first` when the TCP side's peer hung up first and the remote end was then
  /// closed; otherwise `remote` says how the remote end ended (the peer's close code, or the error).
  struct End {
    bool tcp_first = false;
    std::string remote;
  };
  using Done = std::function<void(const End&)>;

  RelayPump(boost::asio::ip::tcp::socket tcp, Remote remote, Done done)
      : tcp_(std::move(tcp)), remote_(std::move(remote)), done_(std::move(done)) {
    if constexpr (kWebSocket) amqp_streams::carry_amqp(remote_);
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
    auto written = [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
      if (write_error) return self->end(write_error);
      self->read_tcp();
    };
    if constexpr (kWebSocket) {
      remote_.async_write(boost::asio::buffer(up_.data(), n), std::move(written));
    } else {
      boost::asio::async_write(remote_, boost::asio::buffer(up_.data(), n), std::move(written));
    }
  }

  void read_remote() {
    remote_.async_read_some(
        boost::asio::buffer(down_),
        [self = this->shared_from_this()](ErrorCode ec, std::size_t n) { self->on_remote_read(ec, n); });
  }

  void on_remote_read(ErrorCode ec, std::size_t n) {
    if (ec) return end(ec);  // also the answer to our own WebSocket close: error::closed
    boost::asio::async_write(tcp_, boost::asio::buffer(down_.data(), n),
                             [self = this->shared_from_this()](ErrorCode write_error, std::size_t) {
                               if (write_error) return self->close_remote();
                               self->read_remote();
                             });
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
    if (closing_) {
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
  std::array<char, 65536> up_{};    // TCP → remote
  std::array<char, 65536> down_{};  // remote → TCP
  bool closing_ = false;            // the TCP side ended first; the remote close is under way
  bool ended_ = false;
};

}  // namespace connector
