#include "support/tcp_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace connector::testing {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("tcp proxy: " + what + ": " + std::strerror(errno));
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Writes all of `data` (blocking): the peers on loopback always read, so this never stalls for long.
bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// A listening socket on a free loopback port; returns the socket and sets `port`.
int listen_on_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    fail("listen on loopback");
  }
  port = ntohs(address.sin_port);
  return fd;
}

}  // namespace

SilentListener::SilentListener() : fd_(listen_on_loopback(port_)) {}
SilentListener::~SilentListener() { ::close(fd_); }

bool SilentListener::has_client() const {
  pollfd poller{fd_, POLLIN, 0};
  return ::poll(&poller, 1, 0) == 1;
}

class TcpProxy::Impl {
 public:
  explicit Impl(std::uint16_t target_port) : target_port_(target_port), listener_(listen_on_loopback(port_)) {
    wake_ = ::eventfd(0, EFD_CLOEXEC);
    if (wake_ < 0) fail("eventfd");
    thread_ = std::thread([this] { run(); });
  }

  ~Impl() {
    stopping_ = true;
    notify();
    thread_.join();
    for (const Pair& pair : pairs_) {
      ::close(pair.client);
      ::close(pair.server);
    }
    ::close(listener_);
    ::close(wake_);
  }

  std::uint16_t port() const { return port_; }
  int connections() const { return accepted_.load(); }

  void freeze() {
    freeze_requested_ = true;
    notify();
    // Wait until the proxy thread froze them, so that the caller's next bytes already vanish.
    std::unique_lock lock(mutex_);
    frozen_cv_.wait(lock, [this] { return !freeze_requested_; });
  }

 private:
  struct Pair {
    int client;
    int server;
    bool frozen = false;
    bool closed = false;
  };

  void notify() {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_, &one, sizeof one);
  }

  void run() {
    std::vector<char> buffer(kChunk);
    while (!stopping_) {
      if (freeze_requested_) {
        for (Pair& pair : pairs_) pair.frozen = true;
        std::lock_guard lock(mutex_);
        freeze_requested_ = false;
        frozen_cv_.notify_all();
      }
      // Index 0: wake-up, 1: listener, then two per live (neither frozen nor closed) pair.
      std::vector<pollfd> fds{{wake_, POLLIN, 0}, {listener_, POLLIN, 0}};
      std::vector<Pair*> polled;
      for (Pair& pair : pairs_) {
        if (pair.frozen || pair.closed) continue;
        fds.push_back({pair.client, POLLIN, 0});
        fds.push_back({pair.server, POLLIN, 0});
        polled.push_back(&pair);
      }
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) {
        std::uint64_t value = 0;
        [[maybe_unused]] const ssize_t n = ::read(wake_, &value, sizeof value);
      }
      if (fds[1].revents & POLLIN) accept_one();
      for (std::size_t i = 0; i < polled.size(); ++i) {
        Pair& pair = *polled[i];
        if (fds[2 + 2 * i].revents != 0) forward(pair, pair.client, pair.server, buffer);
        if (!pair.closed && fds[3 + 2 * i].revents != 0) forward(pair, pair.server, pair.client, buffer);
      }
    }
  }

  void accept_one() {
    const int client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) return;
    const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in target = loopback(target_port_);
    if (server < 0 || ::connect(server, reinterpret_cast<sockaddr*>(&target), sizeof target) != 0) {
      ::close(client);  // target down: refuse, as the target itself would
      if (server >= 0) ::close(server);
      return;
    }
    pairs_.push_back(Pair{client, server});
    ++accepted_;
  }

  // A close on one side is passed on as a close of both: the peers here never half-close.
  void forward(Pair& pair, int from, int to, std::vector<char>& buffer) {
    const ssize_t n = ::recv(from, buffer.data(), buffer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (n <= 0 || !write_all(to, buffer.data(), static_cast<std::size_t>(n))) {
      ::shutdown(pair.client, SHUT_RDWR);
      ::shutdown(pair.server, SHUT_RDWR);
      pair.closed = true;
    }
  }

  const std::uint16_t target_port_;
  std::uint16_t port_ = 0;  // before listener_: the constructor sets it while opening listener_
  int listener_ = -1;
  int wake_ = -1;
  std::vector<Pair> pairs_;  // proxy thread only (and the destructor, after the join)
  std::atomic<int> accepted_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> freeze_requested_{false};
  std::mutex mutex_;
  std::condition_variable frozen_cv_;
  std::thread thread_;
};

TcpProxy::TcpProxy(std::uint16_t target_port) : impl_(std::make_unique<Impl>(target_port)) {}
TcpProxy::~TcpProxy() = default;
std::uint16_t TcpProxy::port() const { return impl_->port(); }
void TcpProxy::freeze() { impl_->freeze(); }
int TcpProxy::connections() const { return impl_->connections(); }

}  // namespace connector::testing
