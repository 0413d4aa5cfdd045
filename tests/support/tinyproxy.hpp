#pragma once
// Test fixture: Debian's tinyproxy, a real HTTP proxy that tunnels with CONNECT.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "support/child_process.hpp"

namespace connector::testing {

/// What the proxy allows.
struct TinyProxyOptions {
  std::vector<std::uint16_t> connect_ports;  // CONNECT is refused (403) for every other port
  std::optional<std::pair<std::string, std::string>> basic_auth;  // user, password: 407 without them
};

/// tinyproxy in the foreground on a free port of 127.0.0.1, with a config file written for it, in its
/// own temp dir; stopped on destruction. Not thread-safe: use it from the test's thread.
class TinyProxy {
 public:
  explicit TinyProxy(const TinyProxyOptions& options);
  ~TinyProxy();
  TinyProxy(const TinyProxy&) = delete;
  TinyProxy& operator=(const TinyProxy&) = delete;

  std::uint16_t port() const { return port_; }
  /// "http://127.0.0.1:PORT" (no credentials).
  std::string url() const;
  /// Its log so far (LogLevel Connect: every request line, so every CONNECT).
  std::string log() const { return process_->log(); }

 private:
  TempDir dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace connector::testing
