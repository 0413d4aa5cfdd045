#include "core/pipeline.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>

#include "common/errors.hpp"
#include "config/config.hpp"
#include "observability/logger.hpp"
#include "observability/metrics.hpp"

namespace connector {
namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The acker wakes at least this often when nothing is queued: its heartbeat (the liveness probe) and
// the due retries and claims it computes each round stay current.
constexpr milliseconds kAckerTick{1000};
// Startup connection attempts pause at most this long between them (RETRY_DELAY_MS may be much
// longer), so that an unreachable Redis fails the start within seconds.
constexpr milliseconds kStartupAttemptPause{2000};
// stop() lets a reader's Redis call run this long before it interrupts it: enough for a read whose batch
// is on the wire (a round trip, even across regions), short enough that an idle connector, blocked in
// XREADGROUP BLOCK on an empty stream, stops at once.
constexpr milliseconds kReaderSettle{250};

milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}
}  // namespace

Pipeline::Pipeline(PipelineOptions options, StreamSource& reader, StreamSource& acker, Encoder encoder,
                   Sink& sink, Metrics& metrics)
    : options_(options),
      encoder_(std::move(encoder)),
      sink_(sink),
      reader_(reader, "reader", metrics.redis_reconnects),
      acker_(acker, "acker", metrics.redis_reconnects),
      metrics_(metrics),
      ledger_(options.max_delivery_attempts, options.retry_backoff(), options.jitter, metrics),
      claims_(options.claim_interval) {}

Pipeline::~Pipeline() { stop(); }

std::chrono::milliseconds Pipeline::backoff(unsigned failures) const {
  return options_.retry_backoff().delay(failures, options_.jitter());
}

void Pipeline::ReadPosition::restart_own_pending() {
  own_pending = true;
  pending_cursor.assign(1, '0');  // not = "0": GCC 12's -Wrestrict false positive at -O3 (GCC bug 105651)
}

bool Pipeline::running() const {
  MutexLock lock(mutex_);
  return state_ == Lifecycle::Running;
}

void Pipeline::start() {
  sink_.start();
  try {
    const auto pause = std::min(options_.retry_delay, kStartupAttemptPause);
    reader_.connect_at_startup(options_.startup_connect_attempts, pause);
    acker_.connect_at_startup(options_.startup_connect_attempts, pause);
  } catch (...) {
    reader_->close();
    acker_->close();
    sink_.stop(options_.shutdown_grace);  // nothing was sent: it stops at once
    throw;
  }
  {
    MutexLock lock(mutex_);
    state_ = Lifecycle::Running;
    claims_.start(Clock::now());
  }
  acker_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "acker");
    acker_loop();
  });
  reader_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "reader");
    reader_loop();
  });
}

std::optional<PipelineFailure> Pipeline::fatal_error() const {
  MutexLock lock(mutex_);
  return fatal_error_;
}

// Both threads end here with what the error policy says stops them (redis_error_policy.hpp).
void Pipeline::record_fatal(const std::exception& error, const char* thread) {
  const bool configuration = classify_redis_error(error) == RedisErrorAction::StopInvalidConfiguration;
  logger().fatal(configuration ? "invalid_configuration" : "pipeline_thread_failed",
                 {{"thread", thread}, {"error", error.what()}});
  MutexLock lock(mutex_);
  if (!fatal_error_)
    fatal_error_ = PipelineFailure{fmt::format("{} thread: {}", thread, error.what()), configuration};
}

PipelineStats Pipeline::stats() const {
  PipelineStats stats;
  stats.read = metrics_.entries_read.value();
  stats.claimed = metrics_.entries_claimed.value();
  stats.claim_scans = metrics_.claim_scans.value();
  stats.sent = metrics_.events_sent.value();
  stats.acked = metrics_.entries_acked.value();
  stats.retried = metrics_.retried_total();
  stats.dead_lettered = metrics_.dead_lettered_total();
  stats.deleted_acked = metrics_.entries_deleted_acked.value();
  stats.redis_reconnects = metrics_.redis_reconnects.value();
  MutexLock lock(mutex_);
  stats.in_flight_events = ledger_.outstanding_events();
  stats.in_flight_batches = ledger_.batches();
  return stats;
}

// ---- reader thread ---------------------------------------------------------------------------

// Own pending entries first (ID 0, then after the last one seen), then new ones (">"). After a
// reconnect or a lost group, the pending list is read again: a reply lost with the connection left
// entries there.
void Pipeline::reader_loop() {
  ReadPosition position;
  unsigned failures = 0;
  try {
    while (wait_for_capacity()) {
      const auto failure = try_redis([&] { read_and_dispatch(position); });
      if (!failure) {
        failures = 0;
        continue;
      }
      if (!running()) break;
      recover_reader(*failure, position, failures);
    }
    send_delivered_read_ahead();
  } catch (const std::exception& error) {
    record_fatal(error, "reader");
  }
  MutexLock lock(mutex_);
  reader_finished_ = true;
  progress_.notify_all();
}

// Stopping: the batch a read-ahead made Redis deliver to this consumer is sent like any other, so that
// a graceful stop leaves nothing delivered here and unsent (stop() does not interrupt a reader that has
// a read-ahead to take). Reads nothing new.
void Pipeline::send_delivered_read_ahead() {
  if (!reader_->read_ahead_outstanding()) return;
  const auto failure = try_redis([&] {
    std::vector<StreamEntry> entries;
    {
      const ReaderCall call(*this, /*stopping=*/true);
      entries = reader_->take_delivered_read_ahead(options_.batch_size);
    }
    if (!entries.empty()) dispatch(std::move(entries), EntrySource::New);
  });
  if (failure) {
    logger().warn("read_ahead_left_pending", {{"error", failure->message}});
  }
}

bool Pipeline::has_room_for_batches(std::size_t count) const {
  return ledger_.batches() + count <= options_.max_in_flight_batches;
}

// Read ahead only with room for the batch just read and the next one: what Redis has delivered to this
// consumer stays within MAX_IN_FLIGHT_BATCHES x BATCH_SIZE, and the next batch is dispatched as soon
// as it is read, without waiting for capacity (and idling towards another instance's claim). Asked when
// a full batch has come in, and marked under the same lock as the lifecycle: either stop() came first
// and nothing is sent, or it finds the read-ahead marked and lets the reader take it.
bool Pipeline::grant_read_ahead() {
  MutexLock lock(mutex_);
  if (state_ != Lifecycle::Running || !has_room_for_batches(2)) return false;
  read_ahead_outstanding_ = true;
  return true;
}

bool Pipeline::may_read() const { return state_ != Lifecycle::Running || has_room_for_batches(1); }

// Waits while MAX_IN_FLIGHT_BATCHES are with the sink; false once the pipeline stops running.
bool Pipeline::wait_for_capacity() {
  metrics_.reader_heartbeat.park();
  bool go_on = false;
  {
    MutexLock lock(mutex_);
    read_ahead_outstanding_ = reader_->read_ahead_outstanding();
    while (!may_read()) mutex_.wait(reader_wakeup_);
    go_on = state_ == Lifecycle::Running;
  }
  metrics_.reader_heartbeat.beat();
  return go_on;
}

// The reader's back-off wait: stop() ends it early.
void Pipeline::sleep_unless_stopping(milliseconds delay) {
  const auto deadline = Clock::now() + delay;
  MutexLock lock(mutex_);
  while (state_ == Lifecycle::Running) {
    if (!mutex_.wait_until(reader_wakeup_, deadline)) return;
  }
}

void Pipeline::read_and_dispatch(ReadPosition& position) {
  std::vector<StreamEntry> entries;
  EntrySource source = EntrySource::New;
  {
    const ReaderCall call(*this);
    if (!call) return;
    if (!reader_->connected()) {
      reader_.reconnect();
      position.restart_own_pending();
      // connect() clears an interruption that stop() may have sent just before it.
      if (!running()) return;
    }
    if (position.own_pending) {
      entries = reader_->read_own_pending(position.pending_cursor, options_.batch_size);
      if (entries.empty()) {
        position.own_pending = false;
        logger().debug("own_pending_drained", {{"consumer", reader_->options().consumer}});
        return;
      }
      position.pending_cursor = entries.back().id;
      source = EntrySource::OwnPending;
    } else {
      entries = reader_->read(">", options_.batch_size, options_.poll_timeout, [this] { return grant_read_ahead(); });
    }
  }
  if (!entries.empty()) dispatch(std::move(entries), source);
}

Pipeline::ReaderCall::ReaderCall(Pipeline& pipeline, bool stopping) : pipeline_(pipeline) {
  MutexLock lock(pipeline_.mutex_);
  if (!stopping && pipeline_.state_ != Lifecycle::Running) return;
  pipeline_.reader_call_since_ = Clock::now();
  pipeline_.progress_.notify_all();
  entered_ = true;
}

Pipeline::ReaderCall::~ReaderCall() {
  if (!entered_) return;
  MutexLock lock(pipeline_.mutex_);
  pipeline_.reader_call_since_.reset();
  pipeline_.progress_.notify_all();
}

// The error policy on the reader thread: reconnect on the next round, recreate the group and read
// again at once, or back off after a refusal.
void Pipeline::recover_reader(const RedisFailure& failure, ReadPosition& position, unsigned& failures) {
  if (failure.action == RedisErrorAction::Reconnect) {
    reader_->close();
    const auto delay = backoff(++failures);
    logger().warn("redis_reconnect", {{"role", "reader"}, {"error", failure.message}, {"retry_in_ms", delay.count()}});
    sleep_unless_stopping(delay);
    return;
  }
  std::string refusal = failure.message;
  if (failure.action == RedisErrorAction::RecreateGroup) {
    position.restart_own_pending();
    std::optional<RedisFailure> again;
    {
      const ReaderCall call(*this);
      if (!call) return;
      again = reader_.recover_lost_group(failure.message);
    }
    // Recreated: read at once. Connection gone: the next round reconnects (and backs off if that fails).
    if (!again || again->action == RedisErrorAction::Reconnect) return;
    refusal = again->message;  // e.g. OOM: XGROUP CREATE is a write
  }
  const auto delay = backoff(++failures);
  logger().error("redis_read_failed", {{"error", refusal}, {"retry_in_ms", delay.count()}});
  sleep_unless_stopping(delay);
}

// On the reader thread (new and own pending entries) and the acker thread (claimed ones). Own pending
// re-reads and claims can name entries that are already here: those are left out.
void Pipeline::dispatch(std::vector<StreamEntry> entries, EntrySource source) {
  const auto started = Clock::now();
  if (source != EntrySource::New) {
    MutexLock lock(mutex_);
    ledger_.drop_in_flight(entries);
  }
  if (entries.empty()) return;
  const std::size_t count = entries.size();
  Batch events;
  const auto plans = plan_entries(entries, encoder_, sink_.max_event_bytes(), options_.max_delivery_attempts, events);
  auto indices = std::make_shared<std::vector<std::size_t>>();
  indices->reserve(events.size());
  for (std::size_t i = 0; i < count; ++i) {
    if (plans[i].action == EntryAction::Send) indices->push_back(i);
  }
  std::uint64_t batch_id = 0;
  {
    MutexLock lock(mutex_);
    batch_id = ledger_.add(std::move(entries), plans, started);
    (source == EntrySource::Claimed ? metrics_.entries_claimed : metrics_.entries_read).inc(count);
  }
  if (events.size() != count) acker_wakeup_.notify_one();
  if (!events.empty()) sink_.send(std::move(events), on_completions(batch_id, std::move(indices)));
}

// The sink's callback, on any thread: it only queues the outcomes for the acker.
CompletionCallback Pipeline::on_completions(std::uint64_t batch_id,
                                            std::shared_ptr<const std::vector<std::size_t>> indices) {
  return [this, batch_id, indices = std::move(indices)](std::vector<Completion> completions) {
    {
      MutexLock lock(mutex_);
      completions_.push_back(CompletionRecord{batch_id, indices, std::move(completions)});
    }
    acker_wakeup_.notify_one();
  };
}

// ---- acker thread ----------------------------------------------------------------------------

void Pipeline::acker_loop() {
  unsigned failures = 0;
  try {
    MutexLock lock(mutex_);
    for (;;) {
      metrics_.acker_heartbeat.beat();
      wait_for_acker_work();
      apply_completions();
      if (const auto failure = flush_redis_work()) {
        if (state_ == Lifecycle::Closing) break;
        recover_acker(*failure, ++failures);
        continue;
      }
      failures = 0;
      if (state_ == Lifecycle::Closing) {
        if (completions_.empty()) break;
        continue;
      }
      if (state_ == Lifecycle::Running) {
        record_delivery_counts();
        resend_due_retries();
        if (claims_.is_due(Clock::now())) claim_idle_entries();
      }
    }
  } catch (const std::exception& error) {
    record_fatal(error, "acker");
  }
}

bool Pipeline::acker_has_work() const {
  return state_ == Lifecycle::Closing || !completions_.empty() || ledger_.has_due_work();
}

// Until there is work, or the next retry, dead-letter retry or claim is due (at most kAckerTick).
void Pipeline::wait_for_acker_work() {
  auto wake_at = Clock::now() + kAckerTick;
  if (const auto due = ledger_.next_dead_letter_retry()) wake_at = std::min(wake_at, *due);
  if (state_ == Lifecycle::Running) {
    // A claim held back by back-pressure waits for a completion (which wakes us), not for its due
    // time: that time is already past and would make this wait a busy loop for a whole outage.
    if (has_room_for_batches(1)) wake_at = std::min(wake_at, claims_.due());
    if (const auto due = ledger_.next_retry()) wake_at = std::min(wake_at, *due);
  }
  while (!acker_has_work()) {
    if (!mutex_.wait_until(acker_wakeup_, wake_at)) return;
  }
}

// The acker's own back-off wait: wakes early only to exit (completions queue up meanwhile). False
// when it ended because the pipeline is closing.
bool Pipeline::acker_sleep(milliseconds delay) {
  const auto deadline = Clock::now() + delay;
  while (state_ != Lifecycle::Closing) {
    if (!mutex_.wait_until(acker_wakeup_, deadline)) return state_ != Lifecycle::Closing;
  }
  return false;
}

// After a failed flush: back off, then reconnect when the connection is gone. After a refusal (Retry,
// or a lost group already recreated) the connection is fine: the next round asks again.
void Pipeline::recover_acker(const RedisFailure& failure, unsigned failures) {
  if (!acker_sleep(backoff(failures))) return;
  if (failure.action != RedisErrorAction::Reconnect) return;
  MutexUnlock unlocked(mutex_);
  if (const auto again = try_redis([&] { acker_.reconnect(); })) {
    logger().warn("redis_reconnect", {{"role", "acker"}, {"error", again->message}});
  }
}

void Pipeline::apply_completions() {
  const auto now = Clock::now();
  const auto output_ready = [this] { return sink_.ready(); };
  while (!completions_.empty()) {
    const CompletionRecord record = std::move(completions_.front());
    completions_.pop_front();
    ledger_.apply(record.batch_id, *record.entry_indices, record.completions, output_ready, now);
  }
  progress_.notify_all();
}

void Pipeline::entries_resolved(std::size_t ended) {
  if (ended != 0) reader_wakeup_.notify_one();
  progress_.notify_all();
}

// Acks first, then dead letters. A failure is returned for the acker loop to recover from by the error
// policy: a dead connection (reconnect) or a refusal by a working server (wait and ask again). A refused
// dead-letter write is not a failure of the flush: that entry waits for its own back-off, and healthy
// acks go on.
std::optional<RedisFailure> Pipeline::flush_redis_work() {
  auto work = ledger_.take_due_work(Clock::now());
  if (work.empty()) return std::nullopt;
  std::vector<std::string> ids;
  ids.reserve(work.acks.size());
  for (const EntryRef& ref : work.acks) ids.push_back(ledger_.entry(ref).id);
  std::optional<RedisFailure> failure;
  {
    MutexUnlock unlocked(mutex_);
    failure = acker_.ack(ids);
  }
  if (failure) {
    const auto kept = ledger_.give_back(std::move(work));
    logger().warn("redis_ack_failed",
                  {{"error", failure->message}, {"acks_kept", kept.acks}, {"dead_letters_kept", kept.dead_letters}});
    return failure;
  }
  metrics_.observe_acked(ids);
  entries_resolved(ledger_.acked(work.acks, Clock::now()));
  if (work.dead_letters.empty()) return std::nullopt;
  return write_dead_letters(std::move(work.dead_letters));
}

// Entries whose dead-letter write Redis refused stay pending (never acked) and wait for their own
// back-off in the ledger; when the connection is gone, all are due again and the failure is returned.
std::optional<RedisFailure> Pipeline::write_dead_letters(std::vector<EntryRef> due) {
  std::vector<DeadLetter> work;
  work.reserve(due.size());
  for (const EntryRef& ref : due) work.push_back(ledger_.dead_letter(ref));
  DeadLetterOutcome outcome;
  {
    MutexUnlock unlocked(mutex_);
    outcome = acker_.write_dead_letters(work);
  }
  if (const auto& lost = outcome.lost_connection) {
    const auto kept = ledger_.give_back({{}, std::move(due)});
    logger().warn("redis_ack_failed", {{"error", lost->message}, {"dead_letters_kept", kept.dead_letters}});
    return lost;
  }
  entries_resolved(ledger_.dead_letters_written(due, outcome.failures, Clock::now()));
  return std::nullopt;
}

// Records in Redis the attempts that counted (see apply_retry), so that a restart or another instance
// sees them.
void Pipeline::record_delivery_counts() {
  const auto counts = ledger_.take_delivery_counts();
  if (counts.empty()) return;
  MutexUnlock unlocked(mutex_);
  acker_.record_delivery_counts(counts);
}

void Pipeline::resend_due_retries() {
  const auto due = ledger_.take_due_retries(Clock::now());
  if (due.empty()) return;
  MutexUnlock unlocked(mutex_);
  for (const auto& resend : due) send_entries(resend);
}

// Encodes without the lock (entries do not change in the ledger, and only this thread ends batches).
void Pipeline::send_entries(const InFlightLedger::Resend& resend) {
  std::vector<const StreamEntry*> entries;
  {
    MutexLock lock(mutex_);
    for (const std::size_t index : resend.indices) entries.push_back(&ledger_.entry({resend.batch_id, index}));
  }
  Batch events(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) encoder_.encode_into(*entries[i], events[i]);
  auto indices = std::make_shared<const std::vector<std::size_t>>(resend.indices);
  sink_.send(std::move(events), on_completions(resend.batch_id, std::move(indices)));
}

void Pipeline::claim_idle_entries() {
  if (!has_room_for_batches(1)) return;  // back-pressure: claim later
  if (!sink_.ready()) {
    // Claimed entries could only wait in this instance as they wait in the other one: leave them.
    claims_.put_off(Clock::now());
    return;
  }
  // This instance's own entries in flight are never claimed (they may sit idle in Redis while they
  // wait for the output).
  const auto own = ledger_.in_flight_ids();
  const std::string cursor = claims_.cursor();
  ClaimPass pass;
  {
    MutexUnlock unlocked(mutex_);
    pass = acker_.claim_page(options_.claim_min_idle, cursor, options_.batch_size, own);
    if (!pass.failure && !pass.result.entries.empty()) {
      logger().info("entries_claimed", {{"count", pass.result.entries.size()},
                                        {"first", pass.result.entries.front().id},
                                        {"min_idle_ms", options_.claim_min_idle.count()}});
      dispatch(std::move(pass.result.entries), EntrySource::Claimed);
    }
  }
  finish_claim_pass(pass);
}

void Pipeline::finish_claim_pass(const ClaimPass& pass) {
  metrics_.entries_deleted_acked.inc(pass.result.deleted_ids.size());
  if (pass.failure) {
    logger().warn("claim_failed", {{"error", pass.failure->message}});
    claims_.page_failed(Clock::now());
    return;
  }
  metrics_.claim_scans.inc();
  claims_.page_done(pass.result.next_cursor, Clock::now());
}

// ---- shutdown --------------------------------------------------------------------------------

bool Pipeline::drained() const {
  return ledger_.drained() && completions_.empty();
}

// Running → Draining, once: false when never started, or when another stop() is under way or done.
bool Pipeline::begin_draining() {
  MutexLock lock(mutex_);
  if (state_ != Lifecycle::Running) return false;
  state_ = Lifecycle::Draining;
  return true;
}

// The reader finishes what it is doing, so that a batch Redis has already delivered is handed on instead
// of being cut off on the wire. False when it is to be interrupted: a Redis call that has run for
// kReaderSettle waits on an empty stream (BLOCK) or on a server that does not answer; and at the deadline,
// whatever it does. A read-ahead's reply (asked without BLOCK) is waited for until the deadline.
bool Pipeline::wait_for_reader(Clock::time_point deadline) {
  MutexLock lock(mutex_);
  while (!reader_finished_) {
    auto until = deadline;
    if (reader_call_since_ && !read_ahead_outstanding_) until = std::min(until, *reader_call_since_ + kReaderSettle);
    if (Clock::now() >= until) return false;
    mutex_.wait_until(progress_, until);
  }
  return true;
}

// Returns how many events are still with the sink at the deadline.
std::size_t Pipeline::wait_until_drained(Clock::time_point deadline) {
  MutexLock lock(mutex_);
  while (!drained()) {
    if (!mutex_.wait_until(progress_, deadline)) break;
  }
  return ledger_.outstanding_events();
}

void Pipeline::stop() {
  const auto deadline = Clock::now() + options_.shutdown_grace;
  if (!begin_draining()) return;
  reader_wakeup_.notify_all();
  acker_wakeup_.notify_all();
  if (!wait_for_reader(deadline)) reader_->interrupt();
  if (reader_thread_.joinable()) reader_thread_.join();

  const std::size_t left_with_sink = wait_until_drained(deadline);
  // What the sink reports while it stops is still acked: the acker runs until Closing.
  sink_.stop(left_until(deadline));
  {
    MutexLock lock(mutex_);
    state_ = Lifecycle::Closing;
  }
  acker_wakeup_.notify_all();
  if (acker_thread_.joinable()) acker_thread_.join();
  reader_->close();
  acker_->close();

  MutexLock lock(mutex_);
  logger().info("pipeline_stopped", {{"left_with_output_at_grace", left_with_sink},
                                     {"unacked_left_pending", ledger_.unresolved()},
                                     {"acked", metrics_.entries_acked.value()},
                                     {"dead_lettered", metrics_.dead_lettered_total()}});
}

}  // namespace connector
