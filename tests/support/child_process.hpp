#pragma once
// Test fixture helpers: child processes and free local ports.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace connector::testing {

/// Asks the kernel for a currently free TCP port on 127.0.0.1.
std::uint16_t free_port();

/// A child process whose stdout and stderr go to a log file; killed (SIGKILL) on destruction if still running.
class ChildProcess {
 public:
  /// Starts `argv[0]` (a path) with `argv`, the current environment plus `extra_env`, in `working_dir`
  /// (empty: inherit). Output is appended to `log_file`.
  ChildProcess(std::vector<std::string> argv, std::filesystem::path log_file,
               std::map<std::string, std::string> extra_env = {}, std::filesystem::path working_dir = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int signo);
  /// Waits for exit; returns the exit status (128+signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  /// SIGKILL and reap.
  void kill();
  const std::filesystem::path& log_file() const { return log_file_; }
  std::string log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
  std::filesystem::path log_file_;
};

/// Polls `predicate` every 20 ms until true or `timeout`; returns the last result.
template <typename Predicate>
bool wait_until(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    struct timespec ts{0, 20'000'000};
    nanosleep(&ts, nullptr);
  }
  return predicate();
}

/// A fresh empty directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// True when a TCP connect to 127.0.0.1:port succeeds.
bool port_accepts(std::uint16_t port);

/// True when 127.0.0.1:port can be bound right now (nobody listens on it or holds it).
bool port_free(std::uint16_t port);

}  // namespace connector::testing
