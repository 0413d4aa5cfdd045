#pragma once
// Test fixtures for network faults on loopback: a forwarder whose flows can vanish without a close, and
// a port that accepts and never answers.
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

/// A loopback port whose TCP handshakes complete (the kernel's backlog does them) and that never says
/// a word: what a wrong port behind some proxies, or a hung service, looks like to a client.
class SilentListener {
 public:
  SilentListener();  // throws std::runtime_error when it cannot listen
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  std::uint16_t port() const { return port_; }
  /// True once a client's connection waits in the backlog (the client got past connect()).
  bool has_client() const;

 private:
  std::uint16_t port_ = 0;  // before fd_: the constructor sets it while opening fd_
  int fd_ = -1;
};

}  // namespace connector::testing
