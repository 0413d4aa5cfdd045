#pragma once
// What a pipeline's reader and acker threads and its stop() share: one lock and what it guards, and the
// hand-over of entries to the sink that both threads do.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/backoff.hpp"
#include "common/startup_attempts.hpp"
#include "common/thread_annotations.hpp"
#include "config/config.hpp"
#include "core/claim_schedule.hpp"
#include "core/encoder.hpp"
#include "core/in_flight_ledger.hpp"
#include "observability/metrics.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// The delivery settings (config.hpp) plus what no setting names. Built by pipeline_options_from_config
/// (app/component_options.hpp); the settings' defaults live in the settings table only.
struct PipelineOptions : DeliveryTuning {
  std::chrono::milliseconds max_retry_delay{};  // cap of the exponential back-off
  int startup_connect_attempts = kStartupConnectAttempts;
  JitterSource jitter = thread_local_jitter;  // spreads the back-off's waits; tests may fix it

  /// The back-off of Redis reconnects, event retries and refused dead-letter writes.
  BackoffPolicy retry_backoff() const { return {retry_delay, max_retry_delay}; }
};

/// Why a pipeline thread stopped for good; main maps it to the exit status.
struct PipelineFailure {
  std::string message;
  bool invalid_configuration = false;  // e.g. STREAM_KEY turned into a string: exit 2, like at startup
};

/// Idle → Running (start) → Draining (stop: no more reads, resends or claims; in-flight work may still
/// complete and be acked) → Closing (the acker finishes what is queued and exits). A Pipeline runs once.
enum class PipelineLifecycle : std::uint8_t { Idle, Running, Draining, Closing };

/// Where entries handed to dispatch() come from.
enum class EntrySource { New, OwnPending, Claimed };

/// The state a Pipeline's threads share, guarded by `mutex` (what it guards is marked GUARDED_BY and
/// checked by Clang's -Wthread-safety), and what both threads do with it: dispatch() entries to the sink
/// and queue the sink's completions for the acker. Each waiter has its own condition variable: the reader
/// waits on `reader_wakeup`, the acker on `acker_wakeup`, stop() on `progress`. One exception the
/// analysis cannot see: an entry does not change once the ledger has it and only the acker ends batches,
/// so the acker reads entries without the lock while Redis works (see InFlightLedger).
class PipelineShared {
 public:
  using Clock = std::chrono::steady_clock;
  using EntryRef = InFlightLedger::EntryRef;
  /// The outcomes of one sink call, queued for the acker.
  struct CompletionRecord {
    std::uint64_t batch_id;
    std::shared_ptr<const std::vector<std::size_t>> entry_indices;  // event index → entry index
    std::vector<Completion> completions;
  };

  PipelineShared(PipelineOptions options, Encoder encoder, Sink& sink, Metrics& metrics);

  /// True while Running.
  bool running() const EXCLUDES(mutex);
  /// `count` more batches stay within MAX_IN_FLIGHT_BATCHES: the one bound for reading, read-ahead and claims.
  bool has_room_for_batches(std::size_t count) const REQUIRES(mutex);
  /// The wait after `failures` failed Redis calls in a row.
  std::chrono::milliseconds backoff(unsigned failures) const;
  /// Where both threads end with what the error policy says stops them.
  void record_fatal(const std::exception& error, const char* thread) EXCLUDES(mutex);
  /// Plans `entries` (send, or dead-letter for size, encoding or attempts), adds them to the ledger and
  /// sends what is to be sent. Entries already in flight here are left out (own pending re-reads, claims).
  void dispatch(std::vector<StreamEntry> entries, EntrySource source) EXCLUDES(mutex);
  /// Sends a due retry again; encodes without the lock.
  void send_entries(const InFlightLedger::Resend& resend) EXCLUDES(mutex);

  const PipelineOptions options;
  const Encoder encoder;
  Sink& sink;        // thread-safe; started and stopped by the Pipeline only
  Metrics& metrics;  // thread-safe

  mutable Mutex mutex;
  std::condition_variable reader_wakeup;  // capacity freed, or stopping
  std::condition_variable acker_wakeup;   // completions or Redis work queued, or stopping
  std::condition_variable progress;       // something completed or resolved (stop() waits on it)
  // Written with `mutex` held, so that no waiter misses a change (its predicate reads it under `mutex`).
  PipelineLifecycle state GUARDED_BY(mutex) = PipelineLifecycle::Idle;
  // What stop() looks at to let the reader finish instead of cutting a delivered batch off on the wire:
  // since when the reader is in a Redis call, whether that call takes a read-ahead (set when one is
  // granted, refreshed from the reader's session before every read), and whether the reader is done.
  std::optional<Clock::time_point> reader_call_since GUARDED_BY(mutex);
  bool read_ahead_outstanding GUARDED_BY(mutex) = false;
  bool reader_finished GUARDED_BY(mutex) = false;
  InFlightLedger ledger GUARDED_BY(mutex);
  std::deque<CompletionRecord> completions GUARDED_BY(mutex);  // from the sink, for the acker
  std::optional<PipelineFailure> fatal_error GUARDED_BY(mutex);
  ClaimSchedule claims GUARDED_BY(mutex);

 private:
  /// The sink's callback, on any thread: it only queues the outcomes for the acker.
  CompletionCallback on_completions(std::uint64_t batch_id, std::shared_ptr<const std::vector<std::size_t>> indices);
};

}  // namespace connector
