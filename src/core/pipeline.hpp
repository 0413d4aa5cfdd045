#pragma once
// The loop that reads, hands batches to the sink, tracks what is in flight, and acks.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "common/backoff.hpp"
#include "common/thread_annotations.hpp"
#include "config/config.hpp"
#include "core/claim_schedule.hpp"
#include "core/encoder.hpp"
#include "core/in_flight_ledger.hpp"
#include "core/redis_error_policy.hpp"
#include "core/stream_session.hpp"
#include "core/stream_source.hpp"
#include "observability/metrics.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// The delivery settings (config.hpp) plus what no setting names. Built by pipeline_options_from_config
/// (app/component_options.hpp); the settings' defaults live in the settings table only.
struct PipelineOptions : DeliveryTuning {
  std::chrono::milliseconds max_retry_delay{};  // cap of the exponential back-off
  int startup_connect_attempts = 3;
  JitterSource jitter = thread_local_jitter;  // spreads the back-off's waits; tests may fix it

  /// The back-off of Redis reconnects, event retries and refused dead-letter writes.
  BackoffPolicy retry_backoff() const { return {retry_delay, max_retry_delay}; }
};

/// The pipeline's counters (kept in its Metrics, the one set) and in-flight gauges at one moment; read
/// with Pipeline::stats() from any thread.
struct PipelineStats {
  std::uint64_t read = 0;            // entries read from the stream (new and own pending)
  std::uint64_t claimed = 0;         // entries claimed from idle consumers
  std::uint64_t claim_scans = 0;     // pages of the pending list scanned for idle entries
  std::uint64_t sent = 0;            // events handed to the sink (retries included)
  std::uint64_t acked = 0;           // entries XACKed after the sink accepted them
  std::uint64_t retried = 0;         // Retry outcomes
  std::uint64_t dead_lettered = 0;   // moved to the dead-letter stream
  std::uint64_t deleted_acked = 0;   // pending entries found trimmed from the stream, acked
  std::uint64_t redis_reconnects = 0;
  std::size_t in_flight_batches = 0;
  std::size_t in_flight_events = 0;  // with the sink, not completed yet
};

/// Why a pipeline thread stopped for good; main maps it to the exit status.
struct PipelineFailure {
  std::string message;
  bool invalid_configuration = false;  // e.g. STREAM_KEY turned into a string: exit 2, like at startup
};

/// Moves entries from the stream to the sink and acks them once confirmed, at least once.
///
/// Ownership: the pipeline starts the sink it is given (in start()) and stops it (in stop(), within
/// shutdown_grace, after draining); nobody else starts or stops it. The caller keeps the sink alive
/// longer than the pipeline and may read it (ready(), for the probes).
///
/// Threads: the reader thread owns `reader_` (the blocking XREADGROUP connection); the acker thread
/// owns `acker_` (XACK, dead-letter, claims, on a second connection so acks never wait behind a
/// blocking read). Both sources are the caller's (PipelineStreams in production, a double in tests) and
/// outlive the pipeline. What is in flight is kept by an InFlightLedger. Sink completions arrive on any
/// thread and only enqueue. Each waiter has its own condition variable: the reader waits on
/// `reader_wakeup_`, the acker on `acker_wakeup_`, stop() on `progress_`. Both threads meet Redis errors
/// with one policy (core/redis_error_policy.hpp).
///
/// Locking: what `mutex_` guards is marked GUARDED_BY, and the functions that need it REQUIRES; the
/// `thread-safety` preset checks both with Clang's -Wthread-safety. One exception the analysis cannot
/// see: an entry does not change once the ledger has it and only the acker ends batches, so the acker
/// reads entries without the lock while Redis works (see InFlightLedger).
class Pipeline {
 public:
  /// Counts into `metrics` (the process-wide one unless a test gives its own).
  Pipeline(PipelineOptions options, StreamSource& reader, StreamSource& acker, Encoder encoder, Sink& sink,
           Metrics& metrics = connector::metrics());
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Starts the sink, connects to Redis (startup_connect_attempts attempts), checks the server and the
  /// group, then starts the reader and acker threads. Throws what the sink's start() throws,
  /// RedisConnectionError, RedisStreamError or ConfigurationError; nothing is left running when it throws.
  void start() EXCLUDES(mutex_);
  /// Stops reading, waits up to shutdown_grace for in-flight events to complete and be acked, stops
  /// the sink with what is left of the grace and closes the connections. Idempotent; unconfirmed
  /// entries stay pending in Redis.
  void stop() EXCLUDES(mutex_);
  /// Set when a thread stopped for good: a ConfigurationError found while running (the same policy on
  /// both threads: main exits with status 2), or an unexpected error (a bug, never data: status 1).
  std::optional<PipelineFailure> fatal_error() const EXCLUDES(mutex_);
  /// True from a successful start() until stop() begins.
  bool running() const EXCLUDES(mutex_);

  PipelineStats stats() const EXCLUDES(mutex_);

 private:
  /// Idle → Running (start) → Draining (stop: no more reads, resends or claims; in-flight work may still
  /// complete and be acked) → Closing (the acker finishes what is queued and exits). A Pipeline runs once.
  enum class Lifecycle : std::uint8_t { Idle, Running, Draining, Closing };
  enum class EntrySource { New, OwnPending, Claimed };
  using EntryRef = InFlightLedger::EntryRef;
  struct CompletionRecord {
    std::uint64_t batch_id;
    std::shared_ptr<const std::vector<std::size_t>> entry_indices;  // event index → entry index
    std::vector<Completion> completions;
  };
  /// Where the reader reads next: its own pending entries (from `pending_cursor`), then new ones.
  struct ReadPosition {
    bool own_pending = true;
    std::string pending_cursor = "0";
    void restart_own_pending();
  };

  // Startup and Redis connections (either thread; none of them takes the lock for long).
  void record_fatal(const std::exception& error, const char* thread) EXCLUDES(mutex_);
  /// The wait after `failures` failed Redis calls in a row.
  std::chrono::milliseconds backoff(unsigned failures) const;

  // Reader thread.
  void reader_loop() EXCLUDES(mutex_);
  bool wait_for_capacity() EXCLUDES(mutex_);
  // `count` more batches stay within MAX_IN_FLIGHT_BATCHES: the one bound for reading, read-ahead and claims.
  bool has_room_for_batches(std::size_t count) const REQUIRES(mutex_);
  bool may_read() const REQUIRES(mutex_);
  bool grant_read_ahead() EXCLUDES(mutex_);
  /// The reader inside a Redis call, for stop() (wait_for_reader()), for the scope of one of these. False
  /// once the pipeline is stopping, and then no call may be made; `stopping` enters all the same.
  class ReaderCall {
   public:
    explicit ReaderCall(Pipeline& pipeline, bool stopping = false) EXCLUDES(pipeline.mutex_);
    ~ReaderCall() EXCLUDES(pipeline_.mutex_);
    ReaderCall(const ReaderCall&) = delete;
    ReaderCall& operator=(const ReaderCall&) = delete;
    explicit operator bool() const { return entered_; }

   private:
    Pipeline& pipeline_;
    bool entered_ = false;
  };
  void send_delivered_read_ahead() EXCLUDES(mutex_);
  void read_and_dispatch(ReadPosition& position) EXCLUDES(mutex_);
  void recover_reader(const RedisFailure& failure, ReadPosition& position, unsigned& failures) EXCLUDES(mutex_);
  void sleep_unless_stopping(std::chrono::milliseconds delay) EXCLUDES(mutex_);
  void dispatch(std::vector<StreamEntry> entries, EntrySource source) EXCLUDES(mutex_);
  CompletionCallback on_completions(std::uint64_t batch_id,
                                    std::shared_ptr<const std::vector<std::size_t>> indices);

  // Acker thread.
  void acker_loop() EXCLUDES(mutex_);
  void wait_for_acker_work() REQUIRES(mutex_);
  bool acker_has_work() const REQUIRES(mutex_);
  bool acker_sleep(std::chrono::milliseconds delay) REQUIRES(mutex_);
  void recover_acker(const RedisFailure& failure, unsigned failures) REQUIRES(mutex_);
  void apply_completions() REQUIRES(mutex_);
  /// Wakes the reader when `ended` batches freed capacity, and stop() in any case.
  void entries_resolved(std::size_t ended) REQUIRES(mutex_);
  std::optional<RedisFailure> flush_redis_work() REQUIRES(mutex_);
  std::optional<RedisFailure> write_dead_letters(std::vector<EntryRef> due) REQUIRES(mutex_);
  void record_delivery_counts() REQUIRES(mutex_);
  void resend_due_retries() REQUIRES(mutex_);
  void send_entries(const InFlightLedger::Resend& resend) EXCLUDES(mutex_);
  void claim_idle_entries() REQUIRES(mutex_);
  void finish_claim_pass(const ClaimPass& pass) REQUIRES(mutex_);

  // stop().
  bool begin_draining() EXCLUDES(mutex_);
  bool wait_for_reader(std::chrono::steady_clock::time_point deadline) EXCLUDES(mutex_);
  std::size_t wait_until_drained(std::chrono::steady_clock::time_point deadline) EXCLUDES(mutex_);
  bool drained() const REQUIRES(mutex_);  // nothing with the sink or waiting for Redis (retry waits aside)

  PipelineOptions options_;
  Encoder encoder_;
  Sink& sink_;  // started and stopped here only (see the class comment); its methods are thread-safe

  StreamSession reader_;  // reader thread (stop() may interrupt() it from another)
  StreamSession acker_;   // acker thread
  Metrics& metrics_;      // thread-safe

  std::thread reader_thread_;  // started by start(), joined by stop()
  std::thread acker_thread_;   // started by start(), joined by stop()

  mutable Mutex mutex_;
  std::condition_variable reader_wakeup_;  // capacity freed, or stopping
  std::condition_variable acker_wakeup_;   // completions or Redis work queued, or stopping
  std::condition_variable progress_;       // something completed or resolved (stop() waits on it)
  // Written with mutex_ held, so that no waiter misses a change (its predicate reads it under mutex_).
  Lifecycle state_ GUARDED_BY(mutex_) = Lifecycle::Idle;
  // What stop() looks at to let the reader finish instead of cutting a delivered batch off on the wire
  // (wait_for_reader()): since when the reader is in a Redis call, whether that call takes a read-ahead
  // (set when one is granted, refreshed from reader_.read_ahead_outstanding() before every read), and
  // whether the reader thread is done.
  std::optional<std::chrono::steady_clock::time_point> reader_call_since_ GUARDED_BY(mutex_);
  bool read_ahead_outstanding_ GUARDED_BY(mutex_) = false;
  bool reader_finished_ GUARDED_BY(mutex_) = false;
  InFlightLedger ledger_ GUARDED_BY(mutex_);
  std::deque<CompletionRecord> completions_ GUARDED_BY(mutex_);  // from the sink, for the acker
  std::optional<PipelineFailure> fatal_error_ GUARDED_BY(mutex_);
  ClaimSchedule claims_ GUARDED_BY(mutex_);
};

}  // namespace connector
