#pragma once
// One output for several pipelines: each pipeline starts and stops its sink, and the output must start
// once and stop once, after the last of them has drained.
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>

#include "sinks/sink.hpp"

namespace connector {

/// Hands out `users` leases of one sink. Each lease is a Sink its pipeline owns as usual; the first
/// start() of any lease starts the sink, and the stop() of the last lease stops it, with that lease's
/// grace. A lease that failed to start, or was never started, still counts its stop(). The SharedSink
/// and the sink must outlive the leases.
class SharedSink {
 public:
  SharedSink(Sink& sink, std::size_t users) : sink_(sink), users_(users) {}
  SharedSink(const SharedSink&) = delete;
  SharedSink& operator=(const SharedSink&) = delete;

  std::unique_ptr<Sink> lease();

 private:
  class Lease;
  void start();
  void stop(std::chrono::milliseconds grace);

  Sink& sink_;
  std::mutex mutex_;  // guards what follows; held while the sink starts or stops, so they never overlap
  std::size_t users_;
  bool started_ = false;
};

}  // namespace connector
