#pragma once
// A listening TCP socket on a free loopback port, for fake peers written inside a test.
#include <cstdint>

namespace connector::testing {

/// Listens on 127.0.0.1 at a port the kernel picks; accept() hands out one client at a time.
class LoopbackListener {
 public:
  LoopbackListener();  // throws std::runtime_error when it cannot listen
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;

  std::uint16_t port() const { return port_; }
  /// The next client's socket, or -1 once shutdown() was called.
  int accept();
  /// Thread-safe: ends an accept() waiting in another thread.
  void shutdown();

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace connector::testing
