#include "observability/periodic_task.hpp"

namespace connector {

PeriodicTask::PeriodicTask(std::chrono::milliseconds interval, First first, std::function<void()> tick)
    : interval_(interval), first_(first), tick_(std::move(tick)) {}

PeriodicTask::~PeriodicTask() { stop(); }

void PeriodicTask::start() {
  thread_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    if (first_ == First::AfterInterval && wakeup_.wait_for(lock, interval_, [this] { return stopping_; }))
      return;
    while (!stopping_) {
      lock.unlock();
      tick_();
      lock.lock();
      wakeup_.wait_for(lock, interval_, [this] { return stopping_; });
    }
  });
}

void PeriodicTask::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wakeup_.notify_all();
}

void PeriodicTask::join() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace connector
