#include "core/pipeline.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>
#include <random>

#include "common/backoff.hpp"
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
// A retried entry is logged at its first retry and every this many after it: an output outage then
// leaves a trace per entry without a line per attempt.
constexpr unsigned kRetryLogEvery = 10;
// stop() lets a reader's Redis call run this long before it interrupts it: enough for a read whose batch
// is on the wire (a round trip, even across regions), short enough that an idle connector, blocked in
// XREADGROUP BLOCK on an empty stream, stops at once.
constexpr milliseconds kReaderSettle{250};

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}
}  // namespace

std::vector<EntryPlan> plan_entries(const std::vector<StreamEntry>& entries, const Encoder& encoder,
                                    std::size_t max_event_bytes, unsigned max_delivery_attempts,
                                    Batch& events) {
  std::vector<EntryPlan> plans(entries.size());
  events.reserve(events.size() + entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const StreamEntry& entry = entries[i];
    EntryPlan& plan = plans[i];
    if (entry.deleted) {
      plan.action = EntryAction::AckTrimmed;
      continue;
    }
    if (entry.deliveries > max_delivery_attempts) {
      plan = {EntryAction::DeadLetter,
              fmt::format("delivered {} times, more than MAX_DELIVERY_ATTEMPTS ({})", entry.deliveries,
                          max_delivery_attempts),
              Cause::MaxDeliveries};
      continue;
    }
    try {
      Event& event = events.emplace_back();
      encoder.encode_into(entry, event);
      if (event.body.size() > max_event_bytes) {
        plan = {EntryAction::DeadLetter,
                fmt::format("event body of {} bytes exceeds the output's maximum of {} bytes",
                            event.body.size(), max_event_bytes),
                Cause::TooLarge};
        events.pop_back();
      }
    } catch (const MessageProcessingError& error) {
      events.pop_back();
      plan = {EntryAction::DeadLetter, error.what(), Cause::Unencodable};
    }
  }
  return plans;
}

Pipeline::Pipeline(PipelineOptions options, RedisConnectionOptions redis, StreamConsumerOptions stream,
                   Encoder encoder, Sink& sink)
    : options_(options),
      encoder_(std::move(encoder)),
      sink_(sink),
      reader_connection_([&] {
        auto reader = redis;
        if (!reader.client_name.empty()) reader.client_name += ":reader";
        return reader;
      }()),
      reader_(reader_connection_, stream),
      acker_connection_([&] {
        auto acker = redis;
        if (!acker.client_name.empty()) acker.client_name += ":acker";
        return acker;
      }()),
      acker_(acker_connection_, stream) {}

Pipeline::~Pipeline() { stop(); }

std::chrono::milliseconds Pipeline::backoff(unsigned attempt) const {
  thread_local std::minstd_rand random(std::random_device{}());
  return backoff_delay(options_.retry_delay, options_.max_retry_delay, attempt == 0 ? 0 : attempt - 1,
                       std::uniform_real_distribution<double>(0.0, 1.0)(random));
}

void Pipeline::ReadPosition::restart_own_pending() {
  own_pending = true;
  pending_cursor.assign(1, '0');  // not = "0": GCC 12's -Wrestrict false positive at -O3 (GCC bug 105651)
}

bool Pipeline::running() const {
  MutexLock lock(mutex_);
  return state_ == Lifecycle::Running;
}

void Pipeline::connect_with_attempts(RedisConnection& connection, StreamConsumer& consumer, const char* role) {
  std::string last_error;
  for (int attempt = 1; attempt <= options_.startup_connect_attempts; ++attempt) {
    try {
      connection.connect();
      const RedisVersion version = consumer.check_server();
      if (std::string_view(role) == "reader") {
        const bool created = consumer.ensure_group(consumer.options().group_start_id);
        logger().info("redis_connected",
                      {{"address", connection.endpoint().describe()},
                       {"redis_version", fmt::format("{}.{}.{}", version.major, version.minor, version.patch)},
                       {"stream", consumer.options().stream_key},
                       {"group", consumer.options().group},
                       {"consumer", consumer.options().consumer},
                       {"group_created", created}});
      }
      return;
    } catch (const RedisConnectionError& error) {
      last_error = error.what();
      connection.close();
      logger().warn("redis_connect_failed", {{"role", role},
                                             {"attempt", attempt},
                                             {"of", options_.startup_connect_attempts},
                                             {"error", last_error}});
      if (attempt < options_.startup_connect_attempts) {
        std::this_thread::sleep_for(std::min(options_.retry_delay, kStartupAttemptPause));
      }
    }
  }
  throw RedisConnectionError(fmt::format("Failed to connect to Redis at {} after {} attempts: {}",
                                         connection.endpoint().describe(), options_.startup_connect_attempts,
                                         last_error));
}

void Pipeline::reconnect(RedisConnection& connection, StreamConsumer& consumer, const char* role) {
  connection.close();
  connection.connect();
  consumer.check_server();
  recreate_lost_group(consumer, role, "the group did not exist when reconnecting");
  {
    MutexLock lock(mutex_);
    ++stats_.redis_reconnects;
  }
  logger().info("redis_reconnected", {{"role", role}, {"address", connection.endpoint().describe()}});
}

// The one place that recreates a lost group, on either thread: after NOGROUP, after a blocking read
// answered UNBLOCKED (stream deleted), and after a reconnect to a Redis that lost it. GROUP_START_ID
// ("$" by default) would skip what the stream still holds; from "0", everything the lost group had
// not acked is delivered (with what it had acked again: at least once).
void Pipeline::recreate_lost_group(StreamConsumer& consumer, const char* role, std::string_view cause) {
  if (!consumer.ensure_group(kRecreatedGroupStartId)) return;  // it exists, or another instance recreated it
  logger().warn("consumer_group_lost",
                {{"role", role},
                 {"stream", consumer.options().stream_key},
                 {"group", consumer.options().group},
                 {"cause", cause},
                 {"resumed_from", kRecreatedGroupStartId},
                 {"note",
                  "group recreated at the oldest entry the stream holds; entries it had acked are "
                  "delivered again"}});
}

// What either thread does after RecreateGroup. A failure to recreate is returned (with the connection
// closed when it is gone); the caller backs off as after any failure.
std::optional<RedisFailure> Pipeline::recover_lost_group(RedisConnection& connection, StreamConsumer& consumer,
                                                         const char* role, std::string_view cause) {
  auto failure = try_redis([&] { recreate_lost_group(consumer, role, cause); });
  if (failure && failure->action == RedisErrorAction::Reconnect) connection.close();
  return failure;
}

void Pipeline::start() {
  sink_.start();
  try {
    connect_with_attempts(reader_connection_, reader_, "reader");
    connect_with_attempts(acker_connection_, acker_, "acker");
  } catch (...) {
    reader_connection_.close();
    acker_connection_.close();
    sink_.stop(options_.shutdown_grace);  // nothing was sent: it stops at once
    throw;
  }
  {
    MutexLock lock(mutex_);
    state_ = Lifecycle::Running;
    next_claim_ = Clock::now() + options_.claim_interval;
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
  MutexLock lock(mutex_);
  PipelineStats copy = stats_;
  copy.in_flight_events = outstanding_events_;
  copy.in_flight_batches = batches_.size();
  return copy;
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
  if (!reader_.read_ahead_outstanding()) return;
  const auto failure = try_redis([&] {
    std::vector<StreamEntry> entries;
    {
      const ReaderCall call(*this, /*stopping=*/true);
      entries = reader_.take_delivered_read_ahead(options_.batch_size);
    }
    if (!entries.empty()) dispatch(std::move(entries), EntrySource::New);
  });
  if (failure) {
    logger().warn("read_ahead_left_pending", {{"error", failure->message}});
  }
}

bool Pipeline::has_room_for_batches(std::size_t count) const {
  return batches_.size() + count <= options_.max_in_flight_batches;
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
  metrics().reader_heartbeat.park();
  bool go_on = false;
  {
    MutexLock lock(mutex_);
    read_ahead_outstanding_ = reader_.read_ahead_outstanding();
    while (!may_read()) mutex_.wait(reader_wakeup_);
    go_on = state_ == Lifecycle::Running;
  }
  metrics().reader_heartbeat.beat();
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
    if (!reader_connection_.connected()) {
      reconnect(reader_connection_, reader_, "reader");
      position.restart_own_pending();
      // connect() clears an interruption that stop() may have sent just before it.
      if (!running()) return;
    }
    if (position.own_pending) {
      entries = reader_.read_own_pending(position.pending_cursor, options_.batch_size);
      if (entries.empty()) {
        position.own_pending = false;
        logger().debug("own_pending_drained", {{"consumer", reader_.options().consumer}});
        return;
      }
      position.pending_cursor = entries.back().id;
      source = EntrySource::OwnPending;
    } else {
      entries = reader_.read(">", options_.batch_size, options_.poll_timeout, [this] { return grant_read_ahead(); });
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
    reader_connection_.close();
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
      again = recover_lost_group(reader_connection_, reader_, "reader", failure.message);
    }
    // Recreated: read at once. Connection gone: the next round reconnects (and backs off if that fails).
    if (!again || again->action == RedisErrorAction::Reconnect) return;
    refusal = again->message;  // e.g. OOM: XGROUP CREATE is a write
  }
  const auto delay = backoff(++failures);
  logger().error("redis_read_failed", {{"error", refusal}, {"retry_in_ms", delay.count()}});
  sleep_unless_stopping(delay);
}

// Own pending re-reads and claims can name entries that are already here. They are rare, so the set
// is built for them instead of being kept up to date for every entry on the hot path.
void Pipeline::drop_entries_in_flight(std::vector<StreamEntry>& entries) {
  MutexLock lock(mutex_);
  const auto in_flight = in_flight_ids();
  std::erase_if(entries, [&](const StreamEntry& entry) { return in_flight.count(entry.id) != 0; });
}

// Views into batches_: valid while mutex_ is held, and on the acker thread (the only one that erases).
std::unordered_set<std::string_view> Pipeline::in_flight_ids() const {
  std::unordered_set<std::string_view> ids;
  for (const auto& [id, batch] : batches_) {
    for (std::size_t i = 0; i < batch.entries.size(); ++i) {
      if (batch.states[i] != EntryState::Done) ids.insert(batch.entries[i].id);
    }
  }
  return ids;
}

// On the reader thread (new and own pending entries) and the acker thread (claimed ones).
void Pipeline::dispatch(std::vector<StreamEntry> entries, EntrySource source) {
  if (source != EntrySource::New) drop_entries_in_flight(entries);
  if (entries.empty()) return;

  InFlightBatch batch;
  const std::size_t count = entries.size();
  batch.entries = std::move(entries);
  batch.states.assign(count, EntryState::Sending);
  batch.reasons.resize(count);
  batch.causes.resize(count);
  batch.retries.assign(count, 0);
  batch.unresolved = count;
  batch.started = Clock::now();

  Batch events;
  const auto plans =
      plan_entries(batch.entries, encoder_, sink_.max_event_bytes(), options_.max_delivery_attempts, events);
  auto indices = std::make_shared<std::vector<std::size_t>>();
  indices->reserve(events.size());
  std::size_t trimmed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    switch (plans[i].action) {
      case EntryAction::Send:
        indices->push_back(i);
        break;
      case EntryAction::AckTrimmed:
        batch.states[i] = EntryState::AckDue;
        ++trimmed;
        break;
      case EntryAction::DeadLetter:
        batch.states[i] = EntryState::DeadLetterDue;
        batch.reasons[i] = plans[i].reason;
        batch.causes[i] = plans[i].cause;
        break;
    }
  }
  const std::uint64_t batch_id = register_batch(std::move(batch), source, events.size(), trimmed);
  if (events.size() != count) acker_wakeup_.notify_one();
  if (!events.empty()) sink_.send(std::move(events), on_completions(batch_id, std::move(indices)));
}

// The bookkeeping of a new batch: its acks and dead letters due at once, counters, the batch itself.
std::uint64_t Pipeline::register_batch(InFlightBatch batch, EntrySource source, std::size_t events,
                                       std::size_t trimmed) {
  const std::size_t count = batch.entries.size();
  MutexLock lock(mutex_);
  const std::uint64_t batch_id = next_batch_id_++;
  for (std::size_t i = 0; i < count; ++i) {
    if (batch.states[i] == EntryState::AckDue) ack_due_.emplace_back(batch_id, i);
    if (batch.states[i] == EntryState::DeadLetterDue) dead_letter_due_.emplace_back(batch_id, i);
  }
  (source == EntrySource::Claimed ? stats_.claimed : stats_.read) += count;
  (source == EntrySource::Claimed ? metrics().entries_claimed : metrics().entries_read).inc(count);
  stats_.deleted_acked += trimmed;
  stats_.sent += events;
  outstanding_events_ += events;
  batch.accepted_mark.assign(count, accepted_total_);
  batches_.emplace(batch_id, std::move(batch));
  return batch_id;
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
      metrics().acker_heartbeat.beat();
      wait_for_acker_work();
      apply_completions();
      requeue_due_dead_letters();
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
        if (Clock::now() >= next_claim_) claim_idle_entries();
      }
    }
  } catch (const std::exception& error) {
    record_fatal(error, "acker");
  }
}

bool Pipeline::acker_has_work() const {
  return state_ == Lifecycle::Closing || !completions_.empty() || !ack_due_.empty() || !dead_letter_due_.empty();
}

// Until there is work, or the next retry, dead-letter retry or claim is due (at most kAckerTick).
void Pipeline::wait_for_acker_work() {
  auto wake_at = Clock::now() + kAckerTick;
  if (!dead_letter_retry_.empty()) wake_at = std::min(wake_at, dead_letter_retry_at_);
  if (state_ == Lifecycle::Running) {
    // A claim held back by back-pressure waits for a completion (which wakes us), not for its due
    // time: that time is already past and would make this wait a busy loop for a whole outage.
    if (has_room_for_batches(1)) wake_at = std::min(wake_at, next_claim_);
    for (const auto& [id, batch] : batches_) {
      if (std::find(batch.states.begin(), batch.states.end(), EntryState::RetryWait) != batch.states.end()) {
        wake_at = std::min(wake_at, batch.retry_at);
      }
    }
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
  if (const auto again = try_redis([&] { reconnect(acker_connection_, acker_, "acker"); })) {
    logger().warn("redis_reconnect", {{"role", "acker"}, {"error", again->message}});
  }
}

void Pipeline::apply_completions() {
  const auto now = Clock::now();
  while (!completions_.empty()) {
    const CompletionRecord record = std::move(completions_.front());
    completions_.pop_front();
    accepted_total_ += static_cast<std::uint64_t>(
        std::count_if(record.completions.begin(), record.completions.end(),
                      [](const Completion& completion) { return completion.outcome == Outcome::Accepted; }));
    const auto found = batches_.find(record.batch_id);
    InFlightBatch* batch = found == batches_.end() ? nullptr : &found->second;
    for (const Completion& completion : record.completions) apply_completion(record, batch, completion, now);
  }
  progress_.notify_all();
}

// `found` is the record's batch, null when it is unknown.
void Pipeline::apply_completion(const CompletionRecord& record, InFlightBatch* found, const Completion& completion,
                                Clock::time_point now) {
  // A misbehaving sink must not corrupt the books: unknown or repeated completions are ignored.
  if (found == nullptr || completion.index >= record.entry_indices->size()) {
    logger().error("sink_completion_ignored", {{"batch", record.batch_id}, {"index", completion.index}});
    return;
  }
  InFlightBatch& batch = *found;
  const std::size_t index = (*record.entry_indices)[completion.index];
  if (batch.states[index] != EntryState::Sending) {
    logger().error("sink_completion_repeated", {{"entry", batch.entries[index].id}});
    return;
  }
  --outstanding_events_;
  switch (completion.outcome) {
    case Outcome::Accepted:
      batch.states[index] = EntryState::AckDue;
      ack_due_.emplace_back(record.batch_id, index);
      metrics().events_confirmed.inc();
      break;
    case Outcome::Reject:
      mark_dead_letter_due(record.batch_id, batch, index,
                           completion.reason.empty() ? "rejected by the output" : completion.reason,
                           completion.cause);
      break;
    case Outcome::Retry:
      apply_retry(record.batch_id, batch, index, completion, now);
      break;
  }
}

void Pipeline::mark_dead_letter_due(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                                    std::string reason, Cause cause) {
  batch.states[index] = EntryState::DeadLetterDue;
  batch.reasons[index] = std::move(reason);
  batch.causes[index] = cause;
  dead_letter_due_.emplace_back(batch_id, index);
}

void Pipeline::apply_retry(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                           const Completion& completion, Clock::time_point now) {
  StreamEntry& entry = batch.entries[index];
  // A failed attempt counts towards MAX_DELIVERY_ATTEMPTS only when the output was up: ready, and
  // accepting other events since this entry's previous outcome (or since it was sent). During an
  // outage nothing is accepted, so no attempt counts, however long it lasts; the price is that a lone
  // failing entry on an idle stream is retried without counting.
  const bool output_up = sink_.ready() && accepted_total_ > batch.accepted_mark[index];
  batch.accepted_mark[index] = accepted_total_;
  if (output_up) {
    if (entry.deliveries >= options_.max_delivery_attempts) {
      mark_dead_letter_due(batch_id, batch, index,
                           fmt::format("failed {} times while the output accepted other events, "
                                       "MAX_DELIVERY_ATTEMPTS is {}; last: {}",
                                       entry.deliveries, options_.max_delivery_attempts, completion.reason),
                           Cause::MaxDeliveries);
      return;
    }
    counts_due_.emplace_back(entry.id, ++entry.deliveries);
  }
  batch.states[index] = EntryState::RetryWait;
  const unsigned attempt = ++batch.retries[index];
  const auto delay = std::max(backoff(attempt), completion.retry_after);
  // One wait per batch: the earliest-due retry of the batch decides, later ones join it.
  const bool first_waiter = batch.retry_at <= now;
  if (first_waiter || now + delay < batch.retry_at) batch.retry_at = now + delay;
  ++stats_.retried;
  metrics().retried(completion.cause).inc();
  if (attempt == 1 || attempt % kRetryLogEvery == 0) {
    logger().warn("event_retry", {{"entry", entry.id},
                                  {"attempt", attempt},
                                  {"retry_in_ms", delay.count()},
                                  {"reason", completion.reason}});
  }
}

void Pipeline::requeue_due_dead_letters() {
  if (dead_letter_retry_.empty() || Clock::now() < dead_letter_retry_at_) return;
  dead_letter_due_.insert(dead_letter_due_.end(), dead_letter_retry_.begin(), dead_letter_retry_.end());
  dead_letter_retry_.clear();
}

// Acks first, then dead letters. A failure is returned for the acker loop to recover from by the error
// policy: a dead connection (reconnect) or a refusal by a working server (wait and ask again). A refused
// dead-letter write is not a failure of the flush: that entry waits for its own back-off, and healthy
// acks go on.
std::optional<RedisFailure> Pipeline::flush_redis_work() {
  if (ack_due_.empty() && dead_letter_due_.empty()) return std::nullopt;
  auto acks = std::move(ack_due_);
  auto dead_letters = std::move(dead_letter_due_);
  ack_due_.clear();
  dead_letter_due_.clear();

  std::vector<std::string> ids;
  ids.reserve(acks.size());
  for (const auto& [batch_id, index] : acks) ids.push_back(batches_.at(batch_id).entries[index].id);
  std::optional<RedisFailure> failure;
  {
    MutexUnlock unlocked(mutex_);
    failure = ack_in_redis(ids);
  }
  if (failure) {
    ack_due_.insert(ack_due_.end(), acks.begin(), acks.end());
    dead_letter_due_.insert(dead_letter_due_.end(), dead_letters.begin(), dead_letters.end());
    logger().warn("redis_ack_failed", {{"error", failure->message},
                                       {"acks_kept", ack_due_.size()},
                                       {"dead_letters_kept", dead_letter_due_.size()}});
    return failure;
  }
  stats_.acked += acks.size();
  metrics().entries_acked.inc(acks.size());
  metrics().observe_acked(ids);
  for (const auto& [batch_id, index] : acks) resolve(batch_id, index);
  if (dead_letters.empty()) return std::nullopt;
  return write_dead_letters(std::move(dead_letters));
}

std::optional<RedisFailure> Pipeline::ack_in_redis(const std::vector<std::string>& ids) {
  auto failure = try_redis([&] {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    acker_.ack(ids);
  });
  if (!failure) return std::nullopt;
  if (failure->action == RedisErrorAction::Reconnect) acker_connection_.close();
  if (failure->action == RedisErrorAction::RecreateGroup) {
    // The acks are kept: XACK of an ID the recreated group has not delivered is a harmless no-op.
    const auto again = recover_lost_group(acker_connection_, acker_, "acker", failure->message);
    if (again && again->action == RedisErrorAction::Reconnect) failure->action = RedisErrorAction::Reconnect;
  }
  return failure;
}

// Entries whose dead-letter write Redis refused stay pending (never acked) and wait in
// dead_letter_retry_; when the connection is gone, all go back to dead_letter_due_ and the failure is
// returned.
std::optional<RedisFailure> Pipeline::write_dead_letters(std::vector<EntryRef> due) {
  std::vector<DeadLetter> work;
  work.reserve(due.size());
  for (const auto& [batch_id, index] : due) {
    const InFlightBatch& batch = batches_.at(batch_id);
    work.push_back({&batch.entries[index], batch.reasons[index], batch.causes[index]});
  }
  std::vector<std::string> failures;
  std::optional<RedisFailure> failure;
  {
    MutexUnlock unlocked(mutex_);
    failure = try_redis([&] { failures = acker_.dead_letter(work); });
    if (failure && failure->action == RedisErrorAction::Reconnect) {
      acker_connection_.close();
    } else {
      // A refused XACK after the XADDs: all are written again later.
      if (failure) failures.assign(work.size(), failure->message);
      log_dead_letters(work, failures);
    }
  }
  if (failure && failure->action == RedisErrorAction::Reconnect) {
    dead_letter_due_.insert(dead_letter_due_.end(), due.begin(), due.end());
    logger().warn("redis_ack_failed", {{"error", failure->message}, {"dead_letters_kept", dead_letter_due_.size()}});
    return failure;
  }
  settle_dead_letters(due, failures);
  return std::nullopt;
}

void Pipeline::log_dead_letters(const std::vector<DeadLetter>& work, const std::vector<std::string>& failures) const {
  for (std::size_t i = 0; i < work.size(); ++i) {
    const StreamEntry& entry = *work[i].entry;
    if (failures[i].empty()) {
      logger().warn("entry_dead_lettered", {{"entry", entry.id},
                                            {"stream", acker_.options().stream_key},
                                            {"dead_letter_stream", acker_.options().dead_letter_stream},
                                            {"deliveries", entry.deliveries},
                                            {"reason", work[i].reason}});
      metrics().dead_lettered(work[i].cause).inc();
    } else {
      logger().error("dead_letter_failed", {{"entry", entry.id},
                                            {"stream", acker_.options().stream_key},
                                            {"dead_letter_stream", acker_.options().dead_letter_stream},
                                            {"error", failures[i]},
                                            {"reason", work[i].reason},
                                            {"action", "left pending; the write is tried again later"}});
    }
  }
}

void Pipeline::settle_dead_letters(const std::vector<EntryRef>& due, const std::vector<std::string>& failures) {
  bool any_failed = false;
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (failures[i].empty()) {
      ++stats_.dead_lettered;
      resolve(due[i].first, due[i].second);
    } else {
      any_failed = true;
      dead_letter_retry_.push_back(due[i]);
    }
  }
  dead_letter_failures_ = any_failed ? dead_letter_failures_ + 1 : 0;
  if (any_failed) dead_letter_retry_at_ = Clock::now() + backoff(dead_letter_failures_);
}

// Records in Redis the attempts that counted (see apply_retry), so that a restart or another instance
// sees them. Best effort, whatever the failure: a count that is not recorded errs towards more
// attempts, never towards a premature dead letter.
void Pipeline::record_delivery_counts() {
  if (counts_due_.empty()) return;
  auto counts = std::move(counts_due_);
  counts_due_.clear();
  MutexUnlock unlocked(mutex_);
  if (const auto failure = try_redis([&] { acker_.set_delivery_counts(counts); })) {
    if (failure->action == RedisErrorAction::Reconnect) acker_connection_.close();
    logger().debug("delivery_counts_not_recorded", {{"count", counts.size()}, {"error", failure->message}});
  }
}

void Pipeline::resolve(std::uint64_t batch_id, std::size_t index) {
  auto found = batches_.find(batch_id);
  InFlightBatch& batch = found->second;
  // Acked entries of a stream deleted-and-recreated can be resolved twice; count each entry once.
  if (batch.states[index] == EntryState::Done) return;
  batch.states[index] = EntryState::Done;
  if (--batch.unresolved == 0) {
    metrics().batch_duration.observe(std::chrono::duration<double>(Clock::now() - batch.started).count());
    if (logger().enabled(LogLevel::Debug)) {
      logger().debug("batch_done", {{"entries", batch.entries.size()}, {"duration_ms", elapsed_ms(batch.started)}});
    }
    batches_.erase(found);
    reader_wakeup_.notify_one();
  }
  progress_.notify_all();
}

void Pipeline::resend_due_retries() {
  const auto now = Clock::now();
  std::vector<std::pair<std::uint64_t, std::vector<std::size_t>>> due;
  for (auto& [id, batch] : batches_) {
    if (batch.retry_at > now) continue;
    std::vector<std::size_t> indices;
    for (std::size_t i = 0; i < batch.states.size(); ++i) {
      if (batch.states[i] == EntryState::RetryWait) {
        batch.states[i] = EntryState::Sending;
        indices.push_back(i);
      }
    }
    if (!indices.empty()) {
      outstanding_events_ += indices.size();
      stats_.sent += indices.size();
      due.emplace_back(id, std::move(indices));
    }
  }
  if (due.empty()) return;
  MutexUnlock unlocked(mutex_);
  for (auto& [id, indices] : due) send_entries(id, indices);
}

void Pipeline::send_entries(std::uint64_t batch_id, const std::vector<std::size_t>& indices) {
  const InFlightBatch* batch = nullptr;
  {
    MutexLock lock(mutex_);
    batch = &batches_.at(batch_id);
  }
  Batch events(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) encoder_.encode_into(batch->entries[indices[i]], events[i]);
  auto shared_indices = std::make_shared<const std::vector<std::size_t>>(indices);
  sink_.send(std::move(events), on_completions(batch_id, std::move(shared_indices)));
}

void Pipeline::claim_idle_entries() {
  if (!has_room_for_batches(1)) return;  // back-pressure: claim later
  if (!sink_.ready()) {
    // Claimed entries could only wait in this instance as they wait in the other one: leave them.
    next_claim_ = Clock::now() + options_.claim_interval;
    return;
  }
  // This instance's own entries in flight are never claimed (they may sit idle in Redis while they
  // wait for the output).
  const auto own = in_flight_ids();
  const std::string cursor = claim_cursor_;
  ClaimPass pass;
  {
    MutexUnlock unlocked(mutex_);
    pass = claim_in_redis(cursor, own);
    if (!pass.failure && !pass.result.entries.empty()) {
      logger().info("entries_claimed", {{"count", pass.result.entries.size()},
                                        {"first", pass.result.entries.front().id},
                                        {"min_idle_ms", options_.claim_min_idle.count()}});
      dispatch(std::move(pass.result.entries), EntrySource::Claimed);
    }
  }
  finish_claim_pass(pass);
}

Pipeline::ClaimPass Pipeline::claim_in_redis(const std::string& cursor,
                                             const std::unordered_set<std::string_view>& own) {
  ClaimPass pass;
  pass.failure = try_redis([&] {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    pass.result = acker_.claim(options_.claim_min_idle, cursor, options_.batch_size,
                               [&own](std::string_view id) { return own.count(id) != 0; });
    if (!pass.result.deleted_ids.empty()) {
      acker_.ack(pass.result.deleted_ids);
      logger().warn("pending_entries_deleted", {{"count", pass.result.deleted_ids.size()},
                                                {"first", pass.result.deleted_ids.front()},
                                                {"action", "acked: they were trimmed from the stream"}});
    }
  });
  if (!pass.failure) return pass;
  if (pass.failure->action == RedisErrorAction::Reconnect) acker_connection_.close();
  // A failure to recreate is reported with the first one; the reader meets the lost group too.
  if (pass.failure->action == RedisErrorAction::RecreateGroup) {
    recover_lost_group(acker_connection_, acker_, "acker", pass.failure->message);
  }
  return pass;
}

void Pipeline::finish_claim_pass(const ClaimPass& pass) {
  stats_.deleted_acked += pass.result.deleted_ids.size();
  if (pass.failure) {
    logger().warn("claim_failed", {{"error", pass.failure->message}});
    claim_cursor_ = kClaimScanStart;
    next_claim_ = Clock::now() + options_.claim_interval;
    return;
  }
  ++stats_.claim_scans;
  claim_cursor_ = pass.result.next_cursor;
  // More pages wait: go on as soon as capacity allows; otherwise sleep a whole interval.
  next_claim_ = Clock::now() + (claim_cursor_ == kClaimScanStart ? options_.claim_interval : milliseconds(0));
}

// ---- shutdown --------------------------------------------------------------------------------

bool Pipeline::drained() const {
  return outstanding_events_ == 0 && completions_.empty() && ack_due_.empty() && dead_letter_due_.empty();
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
  return outstanding_events_;
}

void Pipeline::stop() {
  const auto deadline = Clock::now() + options_.shutdown_grace;
  if (!begin_draining()) return;
  reader_wakeup_.notify_all();
  acker_wakeup_.notify_all();
  if (!wait_for_reader(deadline)) reader_connection_.interrupt();
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
  reader_connection_.close();
  acker_connection_.close();

  std::size_t unacked = 0;
  MutexLock lock(mutex_);
  for (const auto& [id, batch] : batches_) unacked += batch.unresolved;
  logger().info("pipeline_stopped", {{"left_with_output_at_grace", left_with_sink},
                                     {"unacked_left_pending", unacked},
                                     {"acked", stats_.acked},
                                     {"dead_lettered", stats_.dead_lettered}});
}

}  // namespace connector
