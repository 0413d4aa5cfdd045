#pragma once
// Proton's AMQP on sockets of our own: each connection's bytes go over a way the connector opens itself —
// TCP (through an HTTP proxy's CONNECT), TLS, a WebSocket (EVENT_HUBS_TRANSPORT=websockets) — and, for
// a sink that sends batches, through a BatchFormatStamp (batch_format_stamp.hpp) on the way out, since
// Proton cannot give a delivery the batch message format. Proton's connection_driver does the AMQP; no
// thread, socket or copy stands between it and the service.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <proton/connection.hpp>
#include <proton/connection_options.hpp>
#include <string>

#include "config/proxy_url.hpp"

namespace connector {

/// Where an AMQP connection goes and how.
struct AmqpPathOptions {
  std::string host;           // the namespace host: TLS SNI, the name verified, the WebSocket's Host header
  std::uint16_t port = 5671;  // AMQP's own: 5671 with TLS, 5672 without; WebSockets: 443 or 80
  bool tls = true;         // amqps:// or wss://; false (the emulator's connection string) is amqp:// or ws://
  bool websocket = false;  // AMQP inside a WebSocket; false: the bytes go as they are over TLS or TCP
  std::string ca_file;     // extra CA (EVENT_HUBS_TLS_CA_FILE) besides the system store
  std::optional<ProxyUrl> proxy;                   // HTTPS_PROXY when NO_PROXY does not name the host
  std::chrono::milliseconds setup_timeout{30000};  // each step of the way (TCP, CONNECT, TLS, upgrade)
  // Every byte Proton writes goes through a BatchFormatStamp, and every byte from the service through a
  // MaxFrameHeadroom; bytes they cannot read end that connection.
  bool stamp_batches = false;
};

/// One thread's event loop for Proton connections (proton::io::connection_driver): connect() starts a
/// connection and opens its way — resolve, TCP to the proxy and CONNECT or to the host, TLS, for a
/// WebSocket the upgrade with subprotocol AMQPWSB10 — then moves its bytes. After each piece of work run
/// on the loop (post(), schedule()) and each read, every connection's events go to its handler and its
/// output is written, so a handler never wakes anything. A way that fails or ends closes that
/// connection's transport with an error (the handler's on_transport_error), and problem() says why.
///
/// Threads: run() on the loop thread; post() and stop() from any thread; everything else on the loop
/// thread only.
class AmqpIoLoop {
 public:
  /// Throws EventHubsError when the CA certificates cannot be loaded.
  explicit AmqpIoLoop(AmqpPathOptions options);
  ~AmqpIoLoop();
  AmqpIoLoop(const AmqpIoLoop&) = delete;
  AmqpIoLoop& operator=(const AmqpIoLoop&) = delete;

  const AmqpPathOptions& options() const;
  /// "wss://host:443/$servicebus/websocket via the proxy p:3128", "amqps://host:5671", for logs.
  std::string describe() const;

  // ---- any thread ----
  /// Runs the loop on the calling thread until stop().
  void run();
  /// Makes run() return soon; what is on the wire then is dropped (close what should close first).
  void stop();
  /// Runs `fn` on the loop thread.
  void post(std::function<void()> fn);

  // ---- loop thread ----
  /// Runs `fn` on the loop thread after `delay`, unless the loop stops first.
  void schedule(std::chrono::milliseconds delay, std::function<void()> fn);
  /// Starts a client connection with `options` (whose handler gets its events) and opens its way.
  proton::connection connect(const proton::connection_options& options);
  /// Why the way of the latest connection failed or ended, or which step it still waits for; nullopt
  /// while its bytes flow. Names the proxy or the host, never a credential.
  std::optional<std::string> problem() const;

  class Impl;  // defined in the .cpp, public only so that the connections there can name it

 private:
  std::unique_ptr<Impl> impl_;  // keeps Boost.Beast out of the users' translation units
};

}  // namespace connector
