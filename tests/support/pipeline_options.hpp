#pragma once
// PipelineOptions for tests of the Pipeline, in-process or against a redis-server.
#include <chrono>

#include "core/pipeline.hpp"

namespace connector::testing {

/// The waits of a pipeline under test, each far shorter than in production; the defaults suit a real
/// redis-server on loopback, and a suite with a faster (in-memory) stream names its own.
struct PipelineTestWaits {
  std::chrono::milliseconds poll_timeout{100};
  std::chrono::milliseconds retry_delay{50};
  std::chrono::milliseconds max_retry_delay{500};
  std::chrono::milliseconds shutdown_grace{2000};
  std::chrono::milliseconds claim_interval{100};
  std::chrono::milliseconds claim_min_idle{200};
};

/// Batches of 10, at most 4 in flight, 10 delivery attempts, and `waits`: what every pipeline test starts
/// from before it changes what it is about.
PipelineOptions fast_pipeline_options(const PipelineTestWaits& waits = {});

}  // namespace connector::testing
