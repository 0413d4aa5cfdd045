#pragma once
#include "sinks/sink.hpp"

namespace connector {

/// BLACKHOLE output: confirms every event at once, on the calling thread. For measuring the Redis side.
class BlackholeSink final : public Sink {
 public:
  void start() override {}
  void send(Batch batch, CompletionCallback done) override;
  void stop(std::chrono::milliseconds) override {}
  std::size_t max_event_bytes() const override;
  bool ready() const override { return true; }
};

}  // namespace connector
