#pragma once
// Test fixture: a TCP forwarder on loopback that can make its flows vanish without closing them.
#include <cstdint>
#include <memory>

namespace connector::testing {

/// Forwards every connection made to port() to 127.0.0.1:`target_port`, on one thread of its own.
///
/// freeze() imitates a NAT or load balancer that forgets its flows: the proxy stops reading and writing
/// on every connection open at that moment, without closing it (no FIN, no RST), so both ends see a
/// silent peer. Connections made after freeze() are forwarded normally, as a new flow would be.
class TcpProxy {
 public:
  explicit TcpProxy(std::uint16_t target_port);
  ~TcpProxy();  // closes every socket, frozen ones included
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const;
  /// From now on, bytes on the connections open now go nowhere; thread-safe.
  void freeze();
  /// Connections accepted so far; thread-safe.
  int connections() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace connector::testing
