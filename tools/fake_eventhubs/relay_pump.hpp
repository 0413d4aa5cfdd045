#pragma once
// fake-eventhubs' WebSocket listener: the pump that moves bytes between the broker's plain AMQP socket
// and a client's WebSocket.
#include <array>
#include <boost/asio/write.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "eventhubs/amqp_streams.hpp"

namespace connector {

/// Moves bytes both ways between a TCP socket and an open WebSocket (amqp_streams' PlainWebSocket or
/// TlsWebSocket) until either side ends. What the TCP side sends goes out as one binary message per
/// read, and the payload of any message that comes in goes to the TCP side as it is: AMQP frames its own
/// bytes, so message boundaries mean nothing.
///
/// Threads: everything runs on the one thread that runs the sockets' io_context (an SSL stream must
/// not be read and written from two threads). It keeps itself alive through its pending operations.
template <class Remote>
class RelayPump : public std::enable_shared_from_this<RelayPump<Remote>> {
  static_assert(amqp_streams::kIsWebSocket<Remote>, "the broker's own AMQP needs no pump");

 public:
  /// How the pump ended: `tcp_first` when the TCP side's peer hung up first and the remote end was then
  /// closed; otherwise `remote` says how the remote end ended (the peer's close code, or the error).
  struct End {
    bool tcp_first = false;
    std::string remote;
  };
  using Done = std::function<void(const End&)>;

  RelayPump(boost::asio::ip::tcp::socket tcp, Remote remote, Done done)
      : tcp_(std::move(tcp)), remote_(std::move(remote)), done_(std::move(done)) {
    amqp_streams::carry_amqp(remote_);
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
    remote_.async_write(boost::asio::buffer(up_.data(), n), std::move(written));
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

  /// The TCP side is done: the WebSocket is closed politely, and the read loop ends when the peer
  /// answers.
  void close_remote() {
    if (closing_ || ended_) return;
    closing_ = true;
    remote_.async_close(boost::beast::websocket::close_code::normal,
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
    boost::beast::get_lowest_layer(remote_).close();
    End how;
    if (closing_) {
      how.tcp_first = true;
    } else {
      how.remote = amqp_streams::describe_end(remote_, ec);
    }
    done_(how);
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
