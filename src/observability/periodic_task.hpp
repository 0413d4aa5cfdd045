#pragma once
// A function run every interval on a thread of its own, stopped promptly.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace connector {

/// Runs `tick` every `interval` (first at once, or after one interval) until stopped.
class PeriodicTask {
 public:
  enum class First { AtOnce, AfterInterval };
  PeriodicTask(std::chrono::milliseconds interval, First first, std::function<void()> tick);
  ~PeriodicTask();  // stop()
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

  void start();
  /// No tick starts after this; a tick in progress is not interrupted (see join()).
  void request_stop();
  /// Waits for the thread to end.
  void join();
  void stop() {
    request_stop();
    join();
  }

 private:
  const std::chrono::milliseconds interval_;
  const First first_;
  std::function<void()> tick_;
  std::thread thread_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable wakeup_;
  bool stopping_ = false;
};

}  // namespace connector
