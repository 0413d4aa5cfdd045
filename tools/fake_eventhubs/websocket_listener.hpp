#pragma once
// fake-eventhubs' AMQP over WebSockets (--websocket-port): the service's HTTPS side, as far as a
// producer over WebSockets sees it.
#include <cstdint>
#include <memory>
#include <string>

namespace connector {

/// Listens on every address `host` resolves to (TLS with the broker's certificate, or plain), takes
/// only the upgrade of /$servicebus/websocket with subprotocol AMQPWSB10 (anything else gets the HTTP
/// error the service would give) and relays each WebSocket's bytes to the broker's plain AMQP listener
/// on 127.0.0.1:`amqp_port`, so that the broker serves it like any other connection.
///
/// Threads: one io_context thread of its own, from start() to stop().
class WebSocketListener {
 public:
  struct Options {
    std::string host;
    int port = 0;  // 0: a free port (port() says which)
    std::uint16_t amqp_port = 0;
    std::string tls_cert_file;  // both set: wss://
    std::string tls_key_file;
  };

  /// Binds; throws std::runtime_error when it cannot.
  explicit WebSocketListener(const Options& options);
  ~WebSocketListener();  // stop()
  WebSocketListener(const WebSocketListener&) = delete;
  WebSocketListener& operator=(const WebSocketListener&) = delete;

  std::uint16_t port() const;
  void start();
  void stop();

  class Impl;  // defined in the .cpp, public only so that the connections there can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace connector
