#pragma once
#include "sinks/sink.hpp"
#include "sinks/spent_batches.hpp"

namespace connector {

/// BLACKHOLE output: confirms every event at once, on the calling thread. For measuring the Redis side.
class BlackholeSink final : public Sink {
 public:
  void start() override {}
  void send(Batch batch, CompletionCallback done) override;
  void stop(std::chrono::milliseconds) override {}
  std::size_t max_event_bytes() const override;
  bool ready() const override { return true; }
  Batch spare_batch() override { return spent_.take(); }

 private:
  SpentBatches spent_;
};

}  // namespace connector
