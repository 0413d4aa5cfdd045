#pragma once
// The WebSocket transport of the EVENT_HUBS output (EVENT_HUBS_TRANSPORT=websockets): a loopback port
// where Proton speaks plain AMQP, relayed into a WebSocket to Event Hubs, optionally through an HTTP
// proxy.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/proxy_url.hpp"

namespace connector {

/// Where the WebSocket goes and how.
struct WebSocketRelayOptions {
  std::string host;  // the namespace host: TLS SNI, the name verified, the Host header
  std::uint16_t port = 443;
  bool tls = true;                // wss://; false (the emulator's connection string) is ws://
  std::string ca_file;            // extra CA (EVENT_HUBS_TLS_CA_FILE) besides the system store
  std::optional<ProxyUrl> proxy;  // HTTPS_PROXY when NO_PROXY does not name the host
  std::chrono::milliseconds setup_timeout{30000};  // each step of the way (TCP, CONNECT, TLS, upgrade)
};

/// Listens on 127.0.0.1 (an ephemeral port) and, for each connection accepted there, opens the way out —
/// TCP to the proxy and CONNECT, or TCP to the host; TLS; the WebSocket upgrade with subprotocol
/// AMQPWSB10 — then moves the bytes both ways until either side closes. When the way out fails, the
/// loopback connection is closed and the reason kept for problem().
///
/// Threads: one io_context thread of its own (start() to stop()); port(), problem() and describe() from
/// any thread.
class WebSocketRelay {
 public:
  /// Binds the loopback port; throws EventHubsError when it cannot.
  explicit WebSocketRelay(WebSocketRelayOptions options);
  ~WebSocketRelay();  // stop()
  WebSocketRelay(const WebSocketRelay&) = delete;
  WebSocketRelay& operator=(const WebSocketRelay&) = delete;

  std::uint16_t port() const;
  void start();
  /// Ends every connection at once and joins the thread; call when nothing uses the loopback port any more.
  void stop();
  /// Why the way out of the latest loopback connection failed, or which step it is still waiting for;
  /// nullopt while its bytes flow (or before the first connection). Names the proxy or the host, never a
  /// credential.
  std::optional<std::string> problem() const;
  /// "wss://host:443/$servicebus/websocket via the proxy p:3128", for logs.
  std::string describe() const;

  class Impl;  // defined in the .cpp, public only so that the connections there can name it

 private:
  std::unique_ptr<Impl> impl_;  // keeps Boost.Beast out of the users' translation units
};

}  // namespace connector
