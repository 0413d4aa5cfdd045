#pragma once
// The pipeline's at-least-once bookkeeping, without threads, Redis or a sink: which entries of which
// batches are with the output, waiting for a retry, due for an ack or a dead letter, or done.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/backoff.hpp"
#include "common/cause.hpp"
#include "core/encoder.hpp"
#include "core/event.hpp"
#include "redis/stream_consumer.hpp"
#include "sinks/sink.hpp"

namespace connector {

struct Metrics;

/// What the pipeline does with an entry it read, decided before anything is sent.
enum class EntryAction : std::uint8_t {
  Send,        // encoded into the batch for the output
  AckTrimmed,  // pending but deleted from the stream: nothing to deliver, ack it
  DeadLetter,  // delivered too often, not encodable, or larger than the output takes
};
struct EntryPlan {
  EntryAction action = EntryAction::Send;
  std::string reason;         // DeadLetter: the dlq-reason
  Cause cause = Cause::None;  // DeadLetter: why, for the metric label
};
/// Decides each entry's fate and puts the events to send into `events`, in entry order: encoded into the
/// events it already holds (a spent batch: their strings keep their capacity), appended beyond them;
/// any left over are dropped. Pure (no I/O, no shared state): the decision part of Pipeline::dispatch,
/// unit-tested alone.
std::vector<EntryPlan> plan_entries(const std::vector<StreamEntry>& entries, const Encoder& encoder,
                                    std::size_t max_event_bytes, unsigned max_delivery_attempts,
                                    Batch& events);

/// The batches in flight and the state of each of their entries, with the Redis work that is due
/// (acks, dead letters, delivery counts) and the retries that wait. Not thread-safe: the Pipeline holds
/// its lock around every call. Time is always passed in, so tests drive it with a fake clock.
///
/// An entry is Sending (with the output), RetryWait (its retry waits for the batch's retry time),
/// AckDue or DeadLetterDue (handed out by take_due_work()), then Done; a batch is forgotten once all its
/// entries are Done. An entry's StreamEntry never changes after add() (its delivery count is kept
/// beside it) and batches live in a std::map, so the one thread that ends batches (acked(),
/// dead_letters_written()) may read an entry without the owner's lock.
class InFlightLedger {
 public:
  using Clock = std::chrono::steady_clock;
  using EntryRef = std::pair<std::uint64_t, std::size_t>;  // batch id, entry index in the batch

  /// Entries of one batch due for the output again: the event index → entry index map of the send.
  struct Resend {
    std::uint64_t batch_id = 0;
    std::vector<std::size_t> indices;
  };
  /// The Redis work handed out by take_due_work(): give back what was not done with give_back().
  struct DueWork {
    std::vector<EntryRef> acks;
    std::vector<EntryRef> dead_letters;
    bool empty() const { return acks.empty() && dead_letters.empty(); }
  };

  /// Retries and refused dead-letter writes wait as `retry_backoff` says, jittered by `jitter`.
  /// `metrics` receives every count the ledger makes (events sent, confirmed, retried, acked,
  /// dead-lettered, trimmed entries acked; batch durations).
  InFlightLedger(unsigned max_delivery_attempts, BackoffPolicy retry_backoff, JitterSource jitter,
                 Metrics& metrics);

  /// A new batch whose entries `plans` decided (plan_entries): trimmed ones are due for an ack, the
  /// dead-letter ones for the dead-letter stream, the rest are with the output from now. Returns its id.
  std::uint64_t add(std::vector<StreamEntry> entries, const std::vector<EntryPlan>& plans,
                    Clock::time_point now);

  /// The outcomes of one send of `batch_id`: `entry_indices` maps the send's event indices to entries.
  /// A retry counts towards max_delivery_attempts only when `output_ready()` and the output accepted
  /// other events since this entry's previous outcome (or send). Unknown or repeated outcomes are
  /// logged and ignored: a misbehaving sink must not corrupt the books.
  void apply(std::uint64_t batch_id, const std::vector<std::size_t>& entry_indices,
             const std::vector<Completion>& completions, const std::function<bool()>& output_ready,
             Clock::time_point now);

  /// Acks and dead letters due now (dead letters whose write was refused become due again once their
  /// back-off is over).
  DueWork take_due_work(Clock::time_point now);
  /// How much Redis work is due.
  struct DueCounts {
    std::size_t acks = 0;
    std::size_t dead_letters = 0;
  };
  /// Work from take_due_work() that could not be done (the connection is gone): due again. Returns
  /// all that is due now.
  DueCounts give_back(DueWork work);
  /// The acks of `acked` went through: their entries are done. Returns how many batches ended.
  std::size_t acked(const std::vector<EntryRef>& acked, Clock::time_point now);
  /// The dead-letter writes of `due` were answered: `failures[i]` empty when entry i moved (done),
  /// else it waits for a back-off before it is written again. Returns how many batches ended.
  std::size_t dead_letters_written(const std::vector<EntryRef>& due, const std::vector<std::string>& failures,
                                   Clock::time_point now);
  /// The entries of the batches that ended since the last call, for the reader to free: memory goes
  /// back to the thread that allocated it, whose next batch then reuses it warm, and no batch is freed
  /// under the pipeline's lock.
  std::vector<std::vector<StreamEntry>> take_ended_entries();
  /// Delivery counts to record in Redis (retries that counted), since the last call.
  std::vector<std::pair<std::string, unsigned>> take_delivery_counts();
  /// The entries whose retry is due: they are Sending again from now.
  std::vector<Resend> take_due_retries(Clock::time_point now);

  const StreamEntry& entry(const EntryRef& ref) const;
  /// The entry with its delivery count and dead-letter reason, for the dead-letter stream.
  DeadLetter dead_letter(const EntryRef& ref) const;
  /// IDs of the entries not done yet: views into the ledger, valid until the next call that ends a batch.
  std::unordered_set<std::string_view> in_flight_ids() const;
  /// Removes from `entries` those already in flight (own pending re-reads and claims can name them).
  void drop_in_flight(std::vector<StreamEntry>& entries) const;

  /// When the earliest retry is due, if any waits.
  std::optional<Clock::time_point> next_retry() const;
  /// When refused dead-letter writes are due again, if any wait.
  std::optional<Clock::time_point> next_dead_letter_retry() const;
  bool has_due_work() const { return !ack_due_.empty() || !dead_letter_due_.empty(); }
  /// Nothing with the output and no Redis work due (retry waits aside).
  bool drained() const { return outstanding_events_ == 0 && !has_due_work(); }
  std::size_t batches() const { return batches_.size(); }
  std::size_t outstanding_events() const { return outstanding_events_; }
  /// Entries of every batch not done yet.
  std::size_t unresolved() const;

 private:
  enum class EntryState : std::uint8_t { Sending, RetryWait, AckDue, DeadLetterDue, Done };
  struct InFlightBatch {
    std::vector<StreamEntry> entries;  // as read; never changed after add()
    std::vector<EntryState> states;
    std::vector<unsigned> deliveries;          // Redis's delivery count, raised by counted retries
    std::vector<std::string> reasons;          // dead-letter reasons
    std::vector<Cause> causes;                 // dead-letter causes, for the metric label
    std::vector<unsigned> retries;             // Retry outcomes so far, per entry
    std::vector<std::uint64_t> accepted_mark;  // accepted_total_ at the entry's last outcome (or send)
    std::size_t unresolved = 0;
    Clock::time_point started;
    Clock::time_point retry_at;
  };

  void apply_one(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                 const Completion& completion, const std::function<bool()>& output_ready,
                 Clock::time_point now);
  void apply_retry(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                   const Completion& completion, bool output_up, Clock::time_point now);
  void mark_dead_letter_due(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                            std::string reason, Cause cause);
  /// True when the entry's batch ended with it.
  bool resolve(const EntryRef& ref, Clock::time_point now);
  /// The wait after `failures` in a row, by the policy and the jitter.
  std::chrono::milliseconds backoff(unsigned failures) const {
    return retry_backoff_.delay(failures, jitter_());
  }

  unsigned max_delivery_attempts_;
  BackoffPolicy retry_backoff_;
  JitterSource jitter_;
  Metrics& metrics_;
  std::map<std::uint64_t, InFlightBatch> batches_;  // std::map: entries stay put while others come and go
  std::vector<EntryRef> ack_due_;
  std::vector<EntryRef> dead_letter_due_;
  // Dead letters whose write Redis refused: they wait for their own back-off so that acks go on.
  std::vector<EntryRef> dead_letter_retry_;
  Clock::time_point dead_letter_retry_at_;
  unsigned dead_letter_failures_ = 0;
  std::vector<std::pair<std::string, unsigned>> counts_due_;
  std::uint64_t accepted_total_ = 0;  // Accepted outcomes so far
  std::size_t outstanding_events_ = 0;
  std::uint64_t next_batch_id_ = 1;
  std::vector<std::vector<StreamEntry>> ended_entries_;  // see take_ended_entries()
};

}  // namespace connector
