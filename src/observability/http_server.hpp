#pragma once
// The read-only HTTP endpoint: /metrics, /healthz, /readyz (cpp-httplib).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "observability/probes.hpp"

namespace httplib {
class Server;
}

namespace connector {

/// What the endpoint serves; each is called on an HTTP worker thread, so it must be thread-safe.
struct HttpHandlers {
  std::function<std::string()> metrics;
  std::function<ProbeResult()> liveness;
  std::function<ProbeResult()> readiness;
};

/// Serves GET /metrics, /healthz and /readyz on one address with two worker threads. Nothing it
/// serves changes state; other methods get 405, other paths 404, long URIs 414, and a slow client is
/// cut off by read and write timeouts, so no request can hold the process.
class HttpServer {
 public:
  HttpServer(HttpAddress address, HttpHandlers handlers);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and starts serving; throws ConnectorError naming the address when it cannot bind.
  void start();
  void stop();
  /// The bound port (useful when the address asked for port 0).
  std::uint16_t port() const { return port_; }

 private:
  HttpAddress address_;
  HttpHandlers handlers_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::atomic<bool> loop_returned_{false};  // httplib's accept loop has ended (or never started)
  std::uint16_t port_ = 0;
};

}  // namespace connector
