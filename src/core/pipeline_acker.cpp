#include "core/pipeline_acker.hpp"

#include <algorithm>
#include <string>

#include "observability/logger.hpp"

namespace connector {
namespace {
using std::chrono::milliseconds;

// The acker wakes at least this often when nothing is queued: its heartbeat (the liveness probe) and
// the due retries and claims it computes each round stay current.
constexpr milliseconds kAckerTick{1000};
}  // namespace

void PipelineAcker::run() {
  unsigned failures = 0;
  try {
    MutexLock lock(shared_.mutex);
    for (;;) {
      shared_.metrics.acker_heartbeat.beat();
      wait_for_work();
      apply_completions();
      if (const auto failure = flush_redis_work()) {
        if (shared_.state == PipelineLifecycle::Closing) break;
        recover(*failure, ++failures);
        continue;
      }
      failures = 0;
      if (shared_.state == PipelineLifecycle::Closing) {
        if (shared_.completions.empty()) break;
        continue;
      }
      if (shared_.state == PipelineLifecycle::Running) {
        record_delivery_counts();
        resend_due_retries();
        if (shared_.claims.is_due(Clock::now())) claim_idle_entries();
      }
    }
  } catch (const std::exception& error) {
    shared_.record_fatal(error, "acker");
  }
}

bool PipelineAcker::has_work() const {
  return shared_.state == PipelineLifecycle::Closing || !shared_.completions.empty() ||
         shared_.ledger.has_due_work();
}

// Until there is work, or the next retry, dead-letter retry or claim is due (at most kAckerTick).
void PipelineAcker::wait_for_work() {
  auto wake_at = Clock::now() + kAckerTick;
  if (const auto due = shared_.ledger.next_dead_letter_retry()) wake_at = std::min(wake_at, *due);
  if (shared_.state == PipelineLifecycle::Running) {
    // A claim held back by back-pressure waits for a completion (which wakes us), not for its due
    // time: that time is already past and would make this wait a busy loop for a whole outage.
    if (shared_.has_room_for_batches(1)) wake_at = std::min(wake_at, shared_.claims.due());
    if (const auto due = shared_.ledger.next_retry()) wake_at = std::min(wake_at, *due);
  }
  while (!has_work()) {
    if (!shared_.mutex.wait_until(shared_.acker_wakeup, wake_at)) return;
  }
}

// The acker's own back-off wait: wakes early only to exit (completions queue up meanwhile). False
// when it ended because the pipeline is closing.
bool PipelineAcker::sleep_unless_closing(milliseconds delay) {
  const auto deadline = Clock::now() + delay;
  while (shared_.state != PipelineLifecycle::Closing) {
    if (!shared_.mutex.wait_until(shared_.acker_wakeup, deadline)) {
      return shared_.state != PipelineLifecycle::Closing;
    }
  }
  return false;
}

// After a failed flush: back off, then reconnect when the connection is gone. After a refusal (Retry,
// or a lost group already recreated) the connection is fine: the next round asks again.
void PipelineAcker::recover(const RedisFailure& failure, unsigned failures) {
  if (!sleep_unless_closing(shared_.backoff(failures))) return;
  if (failure.action != RedisErrorAction::Reconnect) return;
  MutexUnlock unlocked(shared_.mutex);
  if (const auto again = try_redis([&] { session_.reconnect(); })) {
    logger().warn("redis_reconnect", {{"role", "acker"}, {"error", again->message}});
  }
}

void PipelineAcker::apply_completions() {
  const auto now = Clock::now();
  const auto output_ready = [this] { return shared_.sink.ready(); };
  while (!shared_.completions.empty()) {
    const PipelineShared::CompletionRecord record = std::move(shared_.completions.front());
    shared_.completions.pop_front();
    shared_.ledger.apply(record.batch_id, *record.entry_indices, record.completions, output_ready, now);
  }
  shared_.progress.notify_all();
}

void PipelineAcker::entries_resolved(std::size_t ended) {
  if (ended != 0) shared_.reader_wakeup.notify_one();
  shared_.progress.notify_all();
}

// Acks first, then dead letters. A failure is returned for the acker loop to recover from by the error
// policy: a dead connection (reconnect) or a refusal by a working server (wait and ask again). A refused
// dead-letter write is not a failure of the flush: that entry waits for its own back-off, and healthy
// acks go on.
std::optional<RedisFailure> PipelineAcker::flush_redis_work() {
  auto work = shared_.ledger.take_due_work(Clock::now());
  if (work.empty()) return std::nullopt;
  // Views of the ledger's IDs: entries do not change there, and only this thread ends batches.
  std::vector<std::string_view> ids;
  ids.reserve(work.acks.size());
  for (const EntryRef& ref : work.acks) ids.push_back(shared_.ledger.entry(ref).id);
  std::optional<RedisFailure> failure;
  {
    MutexUnlock unlocked(shared_.mutex);
    failure = session_.ack(ids);
  }
  if (failure) {
    const auto kept = shared_.ledger.give_back(std::move(work));
    logger().warn("redis_ack_failed",
                  {{"error", failure->message}, {"acks_kept", kept.acks}, {"dead_letters_kept", kept.dead_letters}});
    return failure;
  }
  shared_.metrics.observe_acked(ids);
  entries_resolved(shared_.ledger.acked(work.acks, Clock::now()));
  if (work.dead_letters.empty()) return std::nullopt;
  return write_dead_letters(std::move(work.dead_letters));
}

// Entries whose dead-letter write Redis refused stay pending (never acked) and wait for their own
// back-off in the ledger; when the connection is gone, all are due again and the failure is returned.
std::optional<RedisFailure> PipelineAcker::write_dead_letters(std::vector<EntryRef> due) {
  std::vector<DeadLetter> work;
  work.reserve(due.size());
  for (const EntryRef& ref : due) work.push_back(shared_.ledger.dead_letter(ref));
  DeadLetterOutcome outcome;
  {
    MutexUnlock unlocked(shared_.mutex);
    outcome = session_.write_dead_letters(work);
  }
  if (const auto& lost = outcome.lost_connection) {
    const auto kept = shared_.ledger.give_back({{}, std::move(due)});
    logger().warn("redis_ack_failed", {{"error", lost->message}, {"dead_letters_kept", kept.dead_letters}});
    return lost;
  }
  entries_resolved(shared_.ledger.dead_letters_written(due, outcome.failures, Clock::now()));
  return std::nullopt;
}

// Records in Redis the attempts that counted (see apply_retry), so that a restart or another instance
// sees them.
void PipelineAcker::record_delivery_counts() {
  const auto counts = shared_.ledger.take_delivery_counts();
  if (counts.empty()) return;
  MutexUnlock unlocked(shared_.mutex);
  session_.record_delivery_counts(counts);
}

void PipelineAcker::resend_due_retries() {
  const auto due = shared_.ledger.take_due_retries(Clock::now());
  if (due.empty()) return;
  MutexUnlock unlocked(shared_.mutex);
  for (const auto& resend : due) shared_.send_entries(resend);
}

void PipelineAcker::claim_idle_entries() {
  if (!shared_.has_room_for_batches(1)) return;  // back-pressure: claim later
  if (!shared_.sink.ready()) {
    // Claimed entries could only wait in this instance as they wait in the other one: leave them.
    shared_.claims.put_off(Clock::now());
    return;
  }
  // This instance's own entries in flight are never claimed (they may sit idle in Redis while they
  // wait for the output).
  const auto own = shared_.ledger.in_flight_ids();
  const std::string cursor = shared_.claims.cursor();
  ClaimPass pass;
  {
    MutexUnlock unlocked(shared_.mutex);
    pass = session_.claim_page(shared_.options.claim_min_idle, cursor, shared_.options.batch_size, own);
    if (!pass.failure && !pass.result.entries.empty()) {
      logger().info("entries_claimed", {{"count", pass.result.entries.size()},
                                        {"first", pass.result.entries.front().id},
                                        {"min_idle_ms", shared_.options.claim_min_idle.count()}});
      shared_.dispatch(std::move(pass.result.entries), EntrySource::Claimed);
    }
  }
  finish_claim_pass(pass);
}

void PipelineAcker::finish_claim_pass(const ClaimPass& pass) {
  shared_.metrics.entries_deleted_acked.inc(pass.result.deleted_ids.size());
  if (pass.failure) {
    logger().warn("claim_failed", {{"error", pass.failure->message}});
    shared_.claims.page_failed(Clock::now());
    return;
  }
  shared_.metrics.claim_scans.inc();
  shared_.claims.page_done(pass.result.next_cursor, Clock::now());
}

}  // namespace connector
