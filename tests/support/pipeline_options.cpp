#include "support/pipeline_options.hpp"

namespace connector::testing {

PipelineOptions fast_pipeline_options(const PipelineTestWaits& waits) {
  PipelineOptions options;
  // Small batches and few of them in flight, so that tests reach back-pressure with a few dozen entries.
  static_cast<DeliveryTuning&>(options) = DeliveryTuning{.batch_size = 10,
                                                         .max_in_flight_batches = 4,
                                                         .poll_timeout = waits.poll_timeout,
                                                         .retry_delay = waits.retry_delay,
                                                         .shutdown_grace = waits.shutdown_grace,
                                                         .claim_interval = waits.claim_interval,
                                                         .claim_min_idle = waits.claim_min_idle,
                                                         .max_delivery_attempts = 10};
  options.max_retry_delay = waits.max_retry_delay;
  return options;
}

}  // namespace connector::testing
