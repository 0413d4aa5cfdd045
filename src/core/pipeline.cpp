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

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
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
      plan = {EntryAction::DeadLetter, fmt::format("delivered {} times, more than MAX_DELIVERY_ATTEMPTS ({})",
                                                   entry.deliveries, max_delivery_attempts)};
      continue;
    }
    try {
      Event& event = events.emplace_back();
      encoder.encode_into(entry, event);
      if (event.body.size() > max_event_bytes) {
        plan = {EntryAction::DeadLetter,
                fmt::format("event body of {} bytes exceeds the output's maximum of {} bytes",
                            event.body.size(), max_event_bytes)};
        events.pop_back();
      }
    } catch (const MessageProcessingError& error) {
      events.pop_back();
      plan = {EntryAction::DeadLetter, error.what()};
    }
  }
  return plans;
}

PipelineOptions PipelineOptions::from_config(const Config& config) {
  PipelineOptions options;
  options.batch_size = config.batch_size;
  options.max_in_flight_batches = config.max_in_flight_batches;
  options.poll_timeout = config.poll_timeout;
  options.retry_delay = config.retry_delay;
  options.max_retry_delay = std::max(milliseconds(60000), config.retry_delay);
  options.shutdown_grace = config.shutdown_grace;
  options.claim_interval = config.claim_interval;
  options.claim_min_idle = config.claim_min_idle;
  options.max_delivery_attempts = config.max_delivery_attempts;
  return options;
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

bool Pipeline::sleep_unless_stopping(milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !reader_wakeup_.wait_for(lock, delay, [this] { return state_ != Lifecycle::Running; });
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
        std::this_thread::sleep_for(std::min(options_.retry_delay, milliseconds(2000)));
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
    std::lock_guard lock(mutex_);
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

void Pipeline::start() {
  connect_with_attempts(reader_connection_, reader_, "reader");
  connect_with_attempts(acker_connection_, acker_, "acker");
  {
    std::lock_guard lock(mutex_);
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
  std::lock_guard lock(mutex_);
  return fatal_error_;
}

void Pipeline::record_fatal(const std::exception& error, const char* thread) {
  // Either thread meets a ConfigurationError the same way (a key became a string while running):
  // stop, and let main exit with status 2, as a bad configuration at startup does.
  const bool configuration = dynamic_cast<const ConfigurationError*>(&error) != nullptr;
  logger().fatal(configuration ? "invalid_configuration" : "pipeline_thread_failed",
                 {{"thread", thread}, {"error", error.what()}});
  std::lock_guard lock(mutex_);
  if (!fatal_error_)
    fatal_error_ = PipelineFailure{fmt::format("{} thread: {}", thread, error.what()), configuration};
}

PipelineStats Pipeline::stats() const {
  std::lock_guard lock(mutex_);
  PipelineStats copy = stats_;
  copy.in_flight_events = outstanding_events_;
  copy.in_flight_batches = batches_.size();
  return copy;
}

// ---- reader thread ---------------------------------------------------------------------------

void Pipeline::reader_loop() {
  // Own pending entries first (ID 0, then after the last one seen), then new ones (">"). After a
  // reconnect, the pending list is read again: a reply lost with the connection left entries there.
  bool own_pending = true;
  std::string pending_cursor = "0";
  unsigned failures = 0;
  try {
    while (state_ == Lifecycle::Running) {
      metrics().reader_heartbeat.park();
      {
        std::unique_lock lock(mutex_);
        reader_wakeup_.wait(lock, [this] {
          return state_ != Lifecycle::Running || batches_.size() < options_.max_in_flight_batches;
        });
      }
      metrics().reader_heartbeat.beat();
      if (state_ != Lifecycle::Running) break;
      try {
        if (!reader_connection_.connected()) {
          reconnect(reader_connection_, reader_, "reader");
          own_pending = true;
          pending_cursor.assign(1, '0');  // not = "0": GCC 12's -Wrestrict false positive at -O3 (GCC bug 105651)
          // connect() clears an interruption that stop() may have sent just before it.
          if (state_ != Lifecycle::Running) break;
        }
        std::vector<StreamEntry> entries;
        if (own_pending) {
          entries = reader_.read_own_pending(pending_cursor, options_.batch_size);
          if (entries.empty()) {
            own_pending = false;
            logger().debug("own_pending_drained", {{"consumer", reader_.options().consumer}});
            continue;
          }
          pending_cursor = entries.back().id;
        } else {
          entries = reader_.read(">", options_.batch_size, options_.poll_timeout);
        }
        failures = 0;
        if (!entries.empty()) dispatch(std::move(entries), own_pending ? EntrySource::OwnPending : EntrySource::New);
      } catch (const NoGroupError& error) {
        try {
          recreate_lost_group(reader_, "reader", error.what());
        } catch (const RedisConnectionError&) {
          reader_connection_.close();
        } catch (const RedisStreamError& refused) {  // e.g. OOM: XGROUP CREATE is a write
          const auto delay = backoff(++failures);
          logger().error("redis_read_failed", {{"error", refused.what()}, {"retry_in_ms", delay.count()}});
          sleep_unless_stopping(delay);
        }
        own_pending = true;
        pending_cursor = "0";
      } catch (const RedisConnectionError& error) {
        if (state_ != Lifecycle::Running) break;
        reader_connection_.close();
        const auto delay = backoff(++failures);
        logger().warn("redis_reconnect", {{"role", "reader"}, {"error", error.what()}, {"retry_in_ms", delay.count()}});
        sleep_unless_stopping(delay);
      } catch (const RedisStreamError& error) {
        if (state_ != Lifecycle::Running) break;
        const auto delay = backoff(++failures);
        logger().error("redis_read_failed", {{"error", error.what()}, {"retry_in_ms", delay.count()}});
        sleep_unless_stopping(delay);
      }
    }
  } catch (const std::exception& error) {
    record_fatal(error, "reader");
  }
}

void Pipeline::dispatch(std::vector<StreamEntry> entries, EntrySource source) {
  if (source != EntrySource::New) {
    // Own pending re-reads and claims can name entries that are already here. They are rare, so the
    // set is built for them instead of being kept up to date for every entry on the hot path.
    std::unordered_set<std::string_view> in_flight;
    std::lock_guard lock(mutex_);
    for (const auto& [id, batch] : batches_) {
      for (std::size_t i = 0; i < batch.entries.size(); ++i) {
        if (batch.states[i] != EntryState::Done) in_flight.insert(batch.entries[i].id);
      }
    }
    std::erase_if(entries, [&](const StreamEntry& entry) { return in_flight.count(entry.id) != 0; });
  }
  if (entries.empty()) return;

  InFlightBatch batch;
  const std::size_t count = entries.size();
  batch.entries = std::move(entries);
  batch.states.assign(count, EntryState::Sending);
  batch.reasons.resize(count);
  batch.retries.assign(count, 0);
  batch.unresolved = count;
  batch.started = Clock::now();

  Batch events;
  const auto plans =
      plan_entries(batch.entries, encoder_, sink_.max_event_bytes(), options_.max_delivery_attempts, events);
  auto indices = std::make_shared<std::vector<std::size_t>>();
  indices->reserve(events.size());
  std::vector<std::size_t> deleted;
  for (std::size_t i = 0; i < count; ++i) {
    switch (plans[i].action) {
      case EntryAction::Send:
        indices->push_back(i);
        break;
      case EntryAction::AckTrimmed:
        batch.states[i] = EntryState::AckDue;
        deleted.push_back(i);
        break;
      case EntryAction::DeadLetter:
        batch.states[i] = EntryState::DeadLetterDue;
        batch.reasons[i] = plans[i].reason;
        break;
    }
  }

  std::uint64_t batch_id = 0;
  {
    std::lock_guard lock(mutex_);
    batch_id = next_batch_id_++;
    for (std::size_t i = 0; i < count; ++i) {
      if (batch.states[i] == EntryState::AckDue) ack_due_.emplace_back(batch_id, i);
      if (batch.states[i] == EntryState::DeadLetterDue) dead_letter_due_.emplace_back(batch_id, i);
    }
    (source == EntrySource::Claimed ? stats_.claimed : stats_.read) += count;
    (source == EntrySource::Claimed ? metrics().entries_claimed : metrics().entries_read).inc(count);
    stats_.deleted_acked += deleted.size();
    stats_.sent += events.size();
    outstanding_events_ += events.size();
    batch.accepted_mark.assign(count, accepted_total_);
    batches_.emplace(batch_id, std::move(batch));
  }
  if (events.size() != count) acker_wakeup_.notify_one();
  if (!events.empty()) {
    sink_.send(std::move(events), on_completions(batch_id, std::move(indices)));
  }
}

// The sink's callback, on any thread: it only queues the outcomes for the acker.
CompletionCallback Pipeline::on_completions(std::uint64_t batch_id,
                                            std::shared_ptr<const std::vector<std::size_t>> indices) {
  return [this, batch_id, indices = std::move(indices)](std::vector<Completion> completions) {
    {
      std::lock_guard lock(mutex_);
      completions_.push_back(CompletionRecord{batch_id, indices, std::move(completions)});
    }
    acker_wakeup_.notify_one();
  };
}

// ---- acker thread ----------------------------------------------------------------------------

void Pipeline::acker_loop() {
  unsigned failures = 0;
  try {
    std::unique_lock lock(mutex_);
    for (;;) {
      metrics().acker_heartbeat.beat();
      auto wake_at = Clock::now() + milliseconds(1000);
      if (!dead_letter_retry_.empty()) wake_at = std::min(wake_at, dead_letter_retry_at_);
      if (state_ == Lifecycle::Running) {
        wake_at = std::min(wake_at, next_claim_);
        for (const auto& [id, batch] : batches_) {
          if (std::find(batch.states.begin(), batch.states.end(), EntryState::RetryWait) != batch.states.end()) {
            wake_at = std::min(wake_at, batch.retry_at);
          }
        }
      }
      acker_wakeup_.wait_until(lock, wake_at, [this] {
        return state_ == Lifecycle::Closing || !completions_.empty() || !ack_due_.empty() ||
               !dead_letter_due_.empty();
      });
      apply_completions(lock);
      if (!dead_letter_retry_.empty() && Clock::now() >= dead_letter_retry_at_) {
        dead_letter_due_.insert(dead_letter_due_.end(), dead_letter_retry_.begin(), dead_letter_retry_.end());
        dead_letter_retry_.clear();
      }
      const RedisWork work = flush_redis_work(lock);
      if (work != RedisWork::Done) {
        if (state_ == Lifecycle::Closing) break;
        const auto delay = backoff(++failures);
        if (!acker_sleep(lock, delay)) continue;
        if (work == RedisWork::Refused) continue;  // the socket is fine: Redis said no, ask again later
        lock.unlock();
        try {
          reconnect(acker_connection_, acker_, "acker");
        } catch (const RedisConnectionError& error) {
          logger().warn("redis_reconnect", {{"role", "acker"}, {"error", error.what()}});
        } catch (const RedisStreamError& error) {
          logger().warn("redis_reconnect", {{"role", "acker"}, {"error", error.what()}});
        }
        lock.lock();
        continue;
      }
      failures = 0;
      if (state_ == Lifecycle::Closing) {
        if (completions_.empty()) break;
        continue;
      }
      if (state_ == Lifecycle::Running) {
        record_delivery_counts(lock);
        resend_due_retries(lock);
        if (Clock::now() >= next_claim_) claim_idle_entries(lock);
      }
    }
  } catch (const std::exception& error) {
    record_fatal(error, "acker");
  }
}

// The acker's own back-off wait: wakes early only to exit (completions queue up meanwhile).
bool Pipeline::acker_sleep(std::unique_lock<std::mutex>& lock, milliseconds delay) {
  return !acker_wakeup_.wait_for(lock, delay, [this] { return state_ == Lifecycle::Closing; });
}

void Pipeline::apply_completions(std::unique_lock<std::mutex>&) {
  const auto now = Clock::now();
  while (!completions_.empty()) {
    CompletionRecord record = std::move(completions_.front());
    completions_.pop_front();
    auto found = batches_.find(record.batch_id);
    accepted_total_ += static_cast<std::uint64_t>(
        std::count_if(record.completions.begin(), record.completions.end(),
                      [](const Completion& completion) { return completion.outcome == Outcome::Accepted; }));
    for (const Completion& completion : record.completions) {
      // A misbehaving sink must not corrupt the books: unknown or repeated completions are ignored.
      if (found == batches_.end() || completion.index >= record.entry_indices->size()) {
        logger().error("sink_completion_ignored", {{"batch", record.batch_id}, {"index", completion.index}});
        continue;
      }
      InFlightBatch& batch = found->second;
      const std::size_t index = (*record.entry_indices)[completion.index];
      if (batch.states[index] != EntryState::Sending) {
        logger().error("sink_completion_repeated", {{"entry", batch.entries[index].id}});
        continue;
      }
      --outstanding_events_;
      switch (completion.outcome) {
        case Outcome::Accepted:
          batch.states[index] = EntryState::AckDue;
          ack_due_.emplace_back(record.batch_id, index);
          metrics().events_confirmed.inc();
          break;
        case Outcome::Reject:
          batch.states[index] = EntryState::DeadLetterDue;
          batch.reasons[index] = completion.reason.empty() ? "rejected by the output" : completion.reason;
          dead_letter_due_.emplace_back(record.batch_id, index);
          break;
        case Outcome::Retry: {
          StreamEntry& entry = batch.entries[index];
          // A failed attempt counts towards MAX_DELIVERY_ATTEMPTS only when the output was up: ready,
          // and accepting other events since this entry's previous outcome (or since it was sent).
          // During an outage nothing is accepted, so no attempt counts, however long it lasts; the
          // price is that a lone failing entry on an idle stream is retried without counting.
          const bool output_up = sink_.ready() && accepted_total_ > batch.accepted_mark[index];
          batch.accepted_mark[index] = accepted_total_;
          if (output_up) {
            if (entry.deliveries >= options_.max_delivery_attempts) {
              batch.states[index] = EntryState::DeadLetterDue;
              batch.reasons[index] = fmt::format(
                  "failed {} times while the output accepted other events, "
                  "MAX_DELIVERY_ATTEMPTS is {}; last: {}",
                  entry.deliveries, options_.max_delivery_attempts, completion.reason);
              dead_letter_due_.emplace_back(record.batch_id, index);
              break;
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
          metrics().retried(classify_retry(completion.reason, RetryCause::Rejected)).inc();
          if (attempt == 1 || attempt % 10 == 0) {
            logger().warn("event_retry", {{"entry", batch.entries[index].id},
                                          {"attempt", attempt},
                                          {"retry_in_ms", delay.count()},
                                          {"reason", completion.reason}});
          }
          break;
        }
      }
    }
  }
  progress_.notify_all();
}

// Acks first, then dead letters. The result tells the acker loop what a failure was: a dead socket
// (reconnect) or a refusal by a working server (wait and ask again). A refused dead-letter write is
// not a failure of the flush: that entry waits for its own back-off, and healthy acks go on.
Pipeline::RedisWork Pipeline::flush_redis_work(std::unique_lock<std::mutex>& lock) {
  if (ack_due_.empty() && dead_letter_due_.empty()) return RedisWork::Done;
  auto acks = std::move(ack_due_);
  auto dead_letters = std::move(dead_letter_due_);
  ack_due_.clear();
  dead_letter_due_.clear();

  // The entries stay in batches_ (std::map nodes do not move) and only this thread erases them,
  // so they can be read without the lock while Redis works.
  std::vector<std::string> ids;
  ids.reserve(acks.size());
  for (const auto& [batch_id, index] : acks) ids.push_back(batches_.at(batch_id).entries[index].id);

  lock.unlock();
  RedisWork result = RedisWork::Done;
  std::string failure;
  try {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    acker_.ack(ids);
  } catch (const RedisConnectionError& error) {
    failure = error.what();
    acker_connection_.close();
    result = RedisWork::ConnectionLost;
  } catch (const NoGroupError& error) {
    // The acks are kept: XACK of an ID the recreated group has not delivered is a harmless no-op.
    failure = error.what();
    result = RedisWork::Refused;
    try {
      recreate_lost_group(acker_, "acker", error.what());
    } catch (const RedisConnectionError&) {
      acker_connection_.close();
      result = RedisWork::ConnectionLost;
    } catch (const RedisStreamError&) {
      // Reported with `failure`; asked again after the back-off.
    }
  } catch (const RedisStreamError& error) {
    failure = error.what();
    result = RedisWork::Refused;
  }
  lock.lock();

  if (result == RedisWork::Done) {
    stats_.acked += acks.size();
    metrics().entries_acked.inc(acks.size());
    metrics().observe_acked(ids);
    for (const auto& [batch_id, index] : acks) resolve(batch_id, index);
  } else {
    ack_due_.insert(ack_due_.end(), acks.begin(), acks.end());
    dead_letter_due_.insert(dead_letter_due_.end(), dead_letters.begin(), dead_letters.end());
    logger().warn(
        "redis_ack_failed",
        {{"error", failure}, {"acks_kept", ack_due_.size()}, {"dead_letters_kept", dead_letter_due_.size()}});
    return result;
  }
  if (dead_letters.empty()) return RedisWork::Done;
  try {
    write_dead_letters(std::move(dead_letters), lock);
  } catch (const RedisConnectionError& error) {
    acker_connection_.close();
    logger().warn("redis_ack_failed",
                  {{"error", error.what()}, {"dead_letters_kept", dead_letter_due_.size()}});
    return RedisWork::ConnectionLost;
  }
  return RedisWork::Done;
}

// Called with the lock held; returns with it held. Entries whose dead-letter write Redis refused stay
// pending (never acked) and wait in dead_letter_retry_; on a connection failure, all go back to
// dead_letter_due_ and RedisConnectionError is rethrown.
void Pipeline::write_dead_letters(std::vector<std::pair<std::uint64_t, std::size_t>> due,
                                  std::unique_lock<std::mutex>& lock) {
  std::vector<DeadLetter> work;
  work.reserve(due.size());
  for (const auto& [batch_id, index] : due) {
    const InFlightBatch& batch = batches_.at(batch_id);
    work.push_back({&batch.entries[index], batch.reasons[index]});
  }
  lock.unlock();
  std::vector<std::string> failures;
  try {
    failures = acker_.dead_letter(work);
  } catch (const RedisConnectionError&) {
    lock.lock();
    dead_letter_due_.insert(dead_letter_due_.end(), due.begin(), due.end());
    throw;
  } catch (const RedisStreamError& error) {
    failures.assign(work.size(), error.what());  // the XACK after the XADDs: all are written again later
  }
  for (std::size_t i = 0; i < work.size(); ++i) {
    const StreamEntry& entry = *work[i].entry;
    if (failures[i].empty()) {
      logger().warn("entry_dead_lettered", {{"entry", entry.id},
                                            {"stream", acker_.options().stream_key},
                                            {"dead_letter_stream", acker_.options().dead_letter_stream},
                                            {"deliveries", entry.deliveries},
                                            {"reason", work[i].reason}});
      metrics().dead_lettered(work[i].reason).inc();
    } else {
      logger().error("dead_letter_failed", {{"entry", entry.id},
                                            {"stream", acker_.options().stream_key},
                                            {"dead_letter_stream", acker_.options().dead_letter_stream},
                                            {"error", failures[i]},
                                            {"reason", work[i].reason},
                                            {"action", "left pending; the write is tried again later"}});
    }
  }
  lock.lock();
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

// Records in Redis the attempts that counted (see apply_completions), so that a restart or another
// instance sees them. Best effort: a count that is not recorded errs towards more attempts, never
// towards a premature dead letter.
void Pipeline::record_delivery_counts(std::unique_lock<std::mutex>& lock) {
  if (counts_due_.empty()) return;
  auto counts = std::move(counts_due_);
  counts_due_.clear();
  lock.unlock();
  try {
    acker_.set_delivery_counts(counts);
  } catch (const RedisConnectionError& error) {
    acker_connection_.close();
    logger().debug("delivery_counts_not_recorded", {{"count", counts.size()}, {"error", error.what()}});
  } catch (const RedisStreamError& error) {
    logger().debug("delivery_counts_not_recorded", {{"count", counts.size()}, {"error", error.what()}});
  }
  lock.lock();
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

void Pipeline::resend_due_retries(std::unique_lock<std::mutex>& lock) {
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
  lock.unlock();
  for (auto& [id, indices] : due) send_entries(id, indices);
  lock.lock();
}

void Pipeline::send_entries(std::uint64_t batch_id, const std::vector<std::size_t>& indices) {
  const InFlightBatch* batch = nullptr;
  {
    std::lock_guard lock(mutex_);
    batch = &batches_.at(batch_id);
  }
  Batch events(indices.size());
  for (std::size_t i = 0; i < indices.size(); ++i) encoder_.encode_into(batch->entries[indices[i]], events[i]);
  auto shared_indices = std::make_shared<const std::vector<std::size_t>>(indices);
  sink_.send(std::move(events), on_completions(batch_id, std::move(shared_indices)));
}

void Pipeline::claim_idle_entries(std::unique_lock<std::mutex>& lock) {
  if (batches_.size() >= options_.max_in_flight_batches) return;  // back-pressure: claim later
  if (!sink_.ready()) {
    // Claimed entries could only wait in this instance as they wait in the other one: leave them.
    next_claim_ = Clock::now() + options_.claim_interval;
    return;
  }
  // This instance's own entries in flight are never claimed (they may sit idle in Redis while they
  // wait for the output).
  std::unordered_set<std::string> own;
  for (const auto& [id, batch] : batches_) {
    for (std::size_t i = 0; i < batch.entries.size(); ++i) {
      if (batch.states[i] != EntryState::Done) own.insert(batch.entries[i].id);
    }
  }
  const std::string cursor = claim_cursor_;
  lock.unlock();
  ClaimResult result;
  std::string failure;
  try {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    result = acker_.claim(options_.claim_min_idle, cursor, options_.batch_size,
                          [&own](std::string_view id) { return own.count(std::string(id)) != 0; });
    if (!result.deleted_ids.empty()) {
      acker_.ack(result.deleted_ids);
      logger().warn("pending_entries_deleted", {{"count", result.deleted_ids.size()},
                                                {"first", result.deleted_ids.front()},
                                                {"action", "acked: they were trimmed from the stream"}});
    }
  } catch (const RedisConnectionError& error) {
    failure = error.what();
    acker_connection_.close();
  } catch (const NoGroupError& error) {
    failure = error.what();
    try {
      recreate_lost_group(acker_, "acker", error.what());
    } catch (const RedisConnectionError&) {
      acker_connection_.close();
    } catch (const RedisStreamError&) {
      // Reported with `failure`; the reader meets the lost group too and keeps trying.
    }
  } catch (const RedisStreamError& error) {
    failure = error.what();
  }
  if (failure.empty() && !result.entries.empty()) {
    logger().info("entries_claimed", {{"count", result.entries.size()},
                                      {"first", result.entries.front().id},
                                      {"min_idle_ms", options_.claim_min_idle.count()}});
    dispatch(std::move(result.entries), EntrySource::Claimed);
  }
  lock.lock();
  stats_.deleted_acked += result.deleted_ids.size();
  if (failure.empty()) ++stats_.claim_scans;
  if (!failure.empty()) {
    logger().warn("claim_failed", {{"error", failure}});
    claim_cursor_ = "0-0";
    next_claim_ = Clock::now() + options_.claim_interval;
    return;
  }
  claim_cursor_ = result.next_cursor;
  // More pages wait: go on as soon as capacity allows; otherwise sleep a whole interval.
  next_claim_ = Clock::now() + (claim_cursor_ == "0-0" ? options_.claim_interval : milliseconds(0));
}

// ---- shutdown --------------------------------------------------------------------------------

bool Pipeline::drained() const {
  return outstanding_events_ == 0 && completions_.empty() && ack_due_.empty() && dead_letter_due_.empty();
}

void Pipeline::stop() {
  {
    std::lock_guard lock(mutex_);
    if (state_ != Lifecycle::Running) return;  // never started, or another stop() is under way
  }
  const auto deadline = Clock::now() + options_.shutdown_grace;
  {
    // Under the mutex, so that a waiter that has just checked its predicate cannot miss the notify.
    std::lock_guard lock(mutex_);
    state_ = Lifecycle::Draining;
  }
  reader_connection_.interrupt();
  reader_wakeup_.notify_all();
  acker_wakeup_.notify_all();
  if (reader_thread_.joinable()) reader_thread_.join();

  std::size_t left_with_sink = 0;
  {
    std::unique_lock lock(mutex_);
    progress_.wait_until(lock, deadline, [this] { return drained(); });
    left_with_sink = outstanding_events_;
  }
  const auto remaining = std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  sink_.stop(remaining);
  {
    std::lock_guard lock(mutex_);
    state_ = Lifecycle::Closing;
  }
  acker_wakeup_.notify_all();
  if (acker_thread_.joinable()) acker_thread_.join();
  reader_connection_.close();
  acker_connection_.close();

  std::size_t unacked = 0;
  std::lock_guard lock(mutex_);
  for (const auto& [id, batch] : batches_) unacked += batch.unresolved;
  logger().info("pipeline_stopped", {{"left_with_output_at_grace", left_with_sink},
                                     {"unacked_left_pending", unacked},
                                     {"acked", stats_.acked},
                                     {"dead_lettered", stats_.dead_lettered}});
}

}  // namespace connector
