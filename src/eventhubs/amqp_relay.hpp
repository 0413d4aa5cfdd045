#pragma once
// The way between Proton and Event Hubs when Proton cannot take it itself: a loopback port where Proton
// speaks plain AMQP, relayed to the service over AMQP's own TCP or TLS stream or inside a WebSocket
// (EVENT_HUBS_TRANSPORT=websockets), optionally through an HTTP proxy, and optionally with the batch
// message format set on the way (batch_format_stamp.hpp).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "config/proxy_url.hpp"

namespace connector {

/// Where the relay goes and how.
struct AmqpRelayOptions {
  std::string host;           // the namespace host: TLS SNI, the name verified, the WebSocket's Host header
  std::uint16_t port = 5671;  // AMQP's own: 5671 with TLS, 5672 without; WebSockets: 443 or 80
  bool tls = true;         // amqps:// or wss://; false (the emulator's connection string) is amqp:// or ws://
  bool websocket = false;  // AMQP inside a WebSocket; false: the bytes go as they are over TLS or TCP
  std::string ca_file;     // extra CA (EVENT_HUBS_TLS_CA_FILE) besides the system store
  std::optional<ProxyUrl> proxy;                   // HTTPS_PROXY when NO_PROXY does not name the host
  std::chrono::milliseconds setup_timeout{30000};  // each step of the way (TCP, CONNECT, TLS, upgrade)
  // Every byte from the loopback side goes through a BatchFormatStamp, and every byte from the service
  // through a MaxFrameHeadroom; bytes they cannot read end that connection.
  bool stamp_batches = false;
};

/// Listens on 127.0.0.1 (an ephemeral port) and, for each connection accepted there, opens the way out —
/// TCP to the proxy and CONNECT, or TCP to the host; TLS; for a WebSocket the upgrade with subprotocol
/// AMQPWSB10 — then moves the bytes both ways until either side closes. When the way out fails, the
/// loopback connection is closed and the reason kept for problem().
///
/// Threads: one io_context thread of its own (start() to stop()); port(), problem() and describe() from
/// any thread.
class AmqpRelay {
 public:
  /// Binds the loopback port; throws EventHubsError when it cannot.
  explicit AmqpRelay(AmqpRelayOptions options);
  ~AmqpRelay();  // stop()
  AmqpRelay(const AmqpRelay&) = delete;
  AmqpRelay& operator=(const AmqpRelay&) = delete;

  std::uint16_t port() const;
  const AmqpRelayOptions& options() const;
  void start();
  /// Ends every connection at once and joins the thread; call when nothing uses the loopback port any more.
  void stop();
  /// Why the way out of the latest loopback connection failed or ended, or which step it is still waiting
  /// for; nullopt while its bytes flow (or before the first connection). Names the proxy or the host,
  /// never a credential.
  std::optional<std::string> problem() const;
  /// "wss://host:443/$servicebus/websocket via the proxy p:3128", "amqps://host:5671 (relayed)", for logs.
  std::string describe() const;

  class Impl;  // defined in the .cpp, public only so that the connections there can name it

 private:
  std::unique_ptr<Impl> impl_;  // keeps Boost.Beast out of the users' translation units
};

}  // namespace connector
