#pragma once
// The loop that reads, hands batches to the sink, tracks what is in flight, and acks (DESIGN.md "Pipeline").
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "config/config.hpp"
#include "core/encoder.hpp"
#include "redis/redis_connection.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// The delivery settings (config.hpp) plus what no setting names. Built by pipeline_options_from_config
/// (app/component_options.hpp); the settings' defaults live in the settings table only.
struct PipelineOptions : DeliveryTuning {
  std::chrono::milliseconds max_retry_delay{};  // cap of the exponential back-off
  int startup_connect_attempts = 3;
};

/// Counters since start; read with Pipeline::stats() from any thread.
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

/// What the pipeline does with an entry it read, decided before anything is sent.
enum class EntryAction : std::uint8_t {
  Send,        // encoded into the batch for the output
  AckTrimmed,  // pending but deleted from the stream: nothing to deliver, ack it
  DeadLetter,  // delivered too often, not encodable, or larger than the output takes
};
struct EntryPlan {
  EntryAction action = EntryAction::Send;
  std::string reason;  // DeadLetter: the dlq-reason
};
/// Decides each entry's fate and appends the events to send to `events`, in entry order. Pure (no I/O,
/// no shared state): the decision part of Pipeline::dispatch, unit-tested alone.
std::vector<EntryPlan> plan_entries(const std::vector<StreamEntry>& entries, const Encoder& encoder,
                                    std::size_t max_event_bytes, unsigned max_delivery_attempts,
                                    Batch& events);

/// Why a pipeline thread stopped for good; main maps it to the exit status.
struct PipelineFailure {
  std::string message;
  bool invalid_configuration = false;  // e.g. STREAM_KEY turned into a string: exit 2, like at startup
};

/// Moves entries from the stream to the sink and acks them once confirmed, at least once.
///
/// Threads: the reader thread owns `reader_` (the blocking XREADGROUP connection); the acker thread
/// owns `acker_` (XACK, dead-letter, claims, on a second connection so acks never wait behind a
/// blocking read). Sink completions arrive on any thread and only enqueue. Each waiter has its own
/// condition variable: the reader waits on `reader_wakeup_`, the acker on `acker_wakeup_`, stop() on
/// `progress_`.
///
/// Locking: every member from `batches_` down is read and written only with `mutex_` held, with one
/// exception: an InFlightBatch's `entries` do not change after dispatch() and only the acker erases a
/// batch, so the acker reads them without the lock while Redis works (std::map nodes do not move).
/// `state_` is written with `mutex_` held and may be read without it.
class Pipeline {
 public:
  Pipeline(PipelineOptions options, RedisConnectionOptions redis, StreamConsumerOptions stream, Encoder encoder,
           Sink& sink);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Connects to Redis (startup_connect_attempts attempts), checks the server and the group, then
  /// starts the reader and acker threads. Throws RedisConnectionError, RedisStreamError or
  /// ConfigurationError; nothing is left running when it throws.
  void start();
  /// Stops reading, waits up to shutdown_grace for in-flight events to complete and be acked, stops
  /// the sink and closes the connections. Idempotent; unconfirmed entries stay pending in Redis.
  void stop();
  /// Set when a thread stopped for good: a ConfigurationError found while running (the same policy on
  /// both threads: main exits with status 2), or an unexpected error (a bug, never data: status 1).
  std::optional<PipelineFailure> fatal_error() const;

  PipelineStats stats() const;

 private:
  enum class EntryState : std::uint8_t { Sending, RetryWait, AckDue, DeadLetterDue, Done };
  /// Idle → Running (start) → Draining (stop: no more reads, resends or claims; in-flight work may still
  /// complete and be acked) → Closing (the acker finishes what is queued and exits). A Pipeline runs once.
  enum class Lifecycle : std::uint8_t { Idle, Running, Draining, Closing };
  struct InFlightBatch {
    std::vector<StreamEntry> entries;
    std::vector<EntryState> states;
    std::vector<std::string> reasons;          // dead-letter reasons
    std::vector<unsigned> retries;             // Retry outcomes so far, per entry
    std::vector<std::uint64_t> accepted_mark;  // accepted_total_ at the entry's last outcome (or send)
    std::size_t unresolved = 0;
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point retry_at;
    std::chrono::milliseconds retry_floor{0};
  };
  struct CompletionRecord {
    std::uint64_t batch_id;
    std::shared_ptr<const std::vector<std::size_t>> entry_indices;  // event index → entry index
    std::vector<Completion> completions;
  };

  void reader_loop();
  void acker_loop();
  enum class RedisWork { Done, ConnectionLost, Refused };
  void connect_with_attempts(RedisConnection& connection, StreamConsumer& consumer, const char* role);
  void reconnect(RedisConnection& connection, StreamConsumer& consumer, const char* role);
  void recreate_lost_group(StreamConsumer& consumer, const char* role, std::string_view cause);
  enum class EntrySource { New, OwnPending, Claimed };
  void dispatch(std::vector<StreamEntry> entries, EntrySource source);
  void send_entries(std::uint64_t batch_id, const std::vector<std::size_t>& indices);
  CompletionCallback on_completions(std::uint64_t batch_id,
                                    std::shared_ptr<const std::vector<std::size_t>> indices);
  void apply_completions(std::unique_lock<std::mutex>& lock);
  RedisWork flush_redis_work(std::unique_lock<std::mutex>& lock);
  void write_dead_letters(std::vector<std::pair<std::uint64_t, std::size_t>> due,
                          std::unique_lock<std::mutex>& lock);
  void record_delivery_counts(std::unique_lock<std::mutex>& lock);
  bool acker_sleep(std::unique_lock<std::mutex>& lock, std::chrono::milliseconds delay);
  void resend_due_retries(std::unique_lock<std::mutex>& lock);
  void claim_idle_entries(std::unique_lock<std::mutex>& lock);
  void resolve(std::uint64_t batch_id, std::size_t index);
  bool drained() const;  // nothing with the sink or waiting for Redis (retry waits aside)
  void record_fatal(const std::exception& error, const char* thread);
  bool sleep_unless_stopping(std::chrono::milliseconds delay);
  std::chrono::milliseconds backoff(unsigned attempt) const;

  PipelineOptions options_;
  Encoder encoder_;
  Sink& sink_;

  RedisConnection reader_connection_;  // reader thread
  StreamConsumer reader_;              // reader thread
  RedisConnection acker_connection_;   // acker thread
  StreamConsumer acker_;               // acker thread

  std::thread reader_thread_;
  std::thread acker_thread_;

  mutable std::mutex mutex_;               // guards everything below, see the class comment
  std::condition_variable reader_wakeup_;  // capacity freed, or stopping
  std::condition_variable acker_wakeup_;   // completions or Redis work queued, or stopping
  std::condition_variable progress_;        // something completed or resolved (stop() waits on it)
  std::map<std::uint64_t, InFlightBatch> batches_;
  std::deque<CompletionRecord> completions_;
  std::vector<std::pair<std::uint64_t, std::size_t>> ack_due_;
  std::vector<std::pair<std::uint64_t, std::size_t>> dead_letter_due_;
  // Dead letters whose XADD Redis refused: they wait for their own back-off so that acks go on.
  std::vector<std::pair<std::uint64_t, std::size_t>> dead_letter_retry_;
  std::chrono::steady_clock::time_point dead_letter_retry_at_;
  unsigned dead_letter_failures_ = 0;
  std::vector<std::pair<std::string, unsigned>> counts_due_;  // delivery counts to record in Redis
  std::uint64_t accepted_total_ = 0;                          // Accepted outcomes so far
  std::size_t outstanding_events_ = 0;                        // with the sink, not completed yet
  std::uint64_t next_batch_id_ = 1;
  std::optional<PipelineFailure> fatal_error_;
  std::chrono::steady_clock::time_point next_claim_;
  std::string claim_cursor_ = "0-0";
  PipelineStats stats_;
  // Written under mutex_ (so that no waiter misses a change); read by the reader thread without it too.
  std::atomic<Lifecycle> state_{Lifecycle::Idle};
};

}  // namespace connector
