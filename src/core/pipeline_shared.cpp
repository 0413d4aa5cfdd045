#include "core/pipeline_shared.hpp"

#include <fmt/format.h>

#include "core/redis_error_policy.hpp"
#include "observability/logger.hpp"

namespace connector {

PipelineShared::PipelineShared(PipelineOptions options_in, Encoder encoder_in, Sink& sink_in, Metrics& metrics_in)
    : options(std::move(options_in)),
      encoder(std::move(encoder_in)),
      sink(sink_in),
      metrics(metrics_in),
      ledger(options.max_delivery_attempts, options.retry_backoff(), options.jitter, metrics),
      claims(options.claim_interval) {}

// Both threads end here with what the error policy says stops them (redis_error_policy.hpp).
void PipelineShared::record_fatal(const std::exception& error, const char* thread) {
  const bool configuration = classify_redis_error(error) == RedisErrorAction::StopInvalidConfiguration;
  logger().fatal(configuration ? "invalid_configuration" : "pipeline_thread_failed",
                 {{"thread", thread}, {"error", error.what()}});
  MutexLock lock(mutex);
  if (!fatal_error)
    fatal_error = PipelineFailure{fmt::format("{} thread: {}", thread, error.what()), configuration};
}

std::chrono::milliseconds PipelineShared::backoff(unsigned failures) const {
  return options.retry_backoff().delay(failures, options.jitter());
}

bool PipelineShared::has_room_for_batches(std::size_t count) const {
  return ledger.batches() + count <= options.max_in_flight_batches;
}

// On the reader thread (new and own pending entries) and the acker thread (claimed ones). Own pending
// re-reads and claims can name entries that are already here: those are left out.
void PipelineShared::dispatch(std::vector<StreamEntry> entries, EntrySource source) {
  const auto started = Clock::now();
  if (source != EntrySource::New) {
    MutexLock lock(mutex);
    ledger.drop_in_flight(entries);
  }
  if (entries.empty()) return;
  const std::size_t count = entries.size();
  // A batch the sink is done with: encoding into its events reuses their memory.
  Batch events = sink.spare_batch();
  const auto plans = plan_entries(entries, encoder, sink.max_event_bytes(), options.max_delivery_attempts, events);
  auto indices = std::make_shared<std::vector<std::size_t>>();
  indices->reserve(events.size());
  for (std::size_t i = 0; i < count; ++i) {
    if (plans[i].action == EntryAction::Send) indices->push_back(i);
  }
  std::uint64_t batch_id = 0;
  {
    MutexLock lock(mutex);
    batch_id = ledger.add(std::move(entries), plans, started);
    (source == EntrySource::Claimed ? metrics.entries_claimed : metrics.entries_read).inc(count);
  }
  if (events.size() != count) acker_wakeup.notify_one();
  if (!events.empty()) sink.send(std::move(events), on_completions(batch_id, std::move(indices)));
}

// The sink's callback, on any thread: it only queues the outcomes for the acker.
CompletionCallback PipelineShared::on_completions(std::uint64_t batch_id,
                                            std::shared_ptr<const std::vector<std::size_t>> indices) {
  return [this, batch_id, indices = std::move(indices)](std::vector<Completion> outcomes) {
    {
      MutexLock lock(mutex);
      completions.push_back(CompletionRecord{batch_id, indices, std::move(outcomes)});
    }
    acker_wakeup.notify_one();
  };
}

// Encodes without the lock (entries do not change in the ledger, and only this thread ends batches).
void PipelineShared::send_entries(const InFlightLedger::Resend& resend) {
  std::vector<const StreamEntry*> entries;
  {
    MutexLock lock(mutex);
    for (const std::size_t index : resend.indices) entries.push_back(&ledger.entry({resend.batch_id, index}));
  }
  Batch events = sink.spare_batch();
  events.resize(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) encoder.encode_into(*entries[i], events[i]);
  auto indices = std::make_shared<const std::vector<std::size_t>>(resend.indices);
  sink.send(std::move(events), on_completions(resend.batch_id, std::move(indices)));
}

bool PipelineShared::running() const {
  MutexLock lock(mutex);
  return state == PipelineLifecycle::Running;
}

}  // namespace connector
