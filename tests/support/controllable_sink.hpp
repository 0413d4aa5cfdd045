#pragma once
// A sink for pipeline tests whose outcomes the test decides, and which records what it was sent.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "sinks/sink.hpp"

namespace connector::testing {

/// Holds every send until the test completes it (or completes at once with a chosen policy).
class ControllableSink final : public Sink {
 public:
  struct Pending {
    Batch batch;
    CompletionCallback done;
  };
  /// Decides an outcome per event at send time; nullopt keeps the event held for the test.
  using Policy = std::function<std::optional<Outcome>(const Event&)>;

  explicit ControllableSink(Policy policy = {}) : policy_(std::move(policy)) {}
  void start() override {}
  void send(Batch batch, CompletionCallback done) override;
  void stop(std::chrono::milliseconds) override {}
  std::size_t max_event_bytes() const override { return max_event_bytes_; }
  bool ready() const override { return ready_.load(); }

  void set_policy(Policy policy);
  void set_max_event_bytes(std::size_t bytes) { max_event_bytes_ = bytes; }
  /// What ready() answers: false plays an output outage (events are still taken and held).
  void set_ready(bool ready) { ready_ = ready; }
  /// Completes every held event with `outcome`; returns how many.
  std::size_t complete_held(Outcome outcome, std::string reason = "test");
  std::size_t held_events();
  /// Entry IDs of every event ever sent, in order (repeats included).
  std::vector<std::string> sent_ids();
  bool wait_for_sent(std::size_t count, std::chrono::milliseconds timeout);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  Policy policy_;
  std::vector<Pending> held_;
  std::vector<std::string> sent_;
  std::size_t max_event_bytes_ = 1 << 20;
  std::atomic<bool> ready_{true};
};

}  // namespace connector::testing
