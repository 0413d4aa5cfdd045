#include "core/pipeline.hpp"

#include <algorithm>
#include <random>

#include <fmt/format.h>

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
  return !reader_wakeup_.wait_for(lock, delay, [this] { return stopping_.load(); });
}

void Pipeline::connect_with_attempts(RedisConnection& connection, StreamConsumer& consumer, const char* role) {
  std::string last_error;
  for (int attempt = 1; attempt <= options_.startup_connect_attempts; ++attempt) {
    try {
      connection.connect();
      const RedisVersion version = consumer.check_server();
      if (std::string_view(role) == "reader") {
        const bool created = consumer.ensure_group();
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
  consumer.ensure_group();
  {
    std::lock_guard lock(mutex_);
    ++stats_.redis_reconnects;
  }
  logger().info("redis_reconnected", {{"role", role}, {"address", connection.endpoint().describe()}});
}

void Pipeline::start() {
  connect_with_attempts(reader_connection_, reader_, "reader");
  connect_with_attempts(acker_connection_, acker_, "acker");
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    next_claim_ = Clock::now() + options_.claim_interval;
  }
  acker_thread_ = std::thread([this] { acker_loop(); });
  reader_thread_ = std::thread([this] { reader_loop(); });
}

std::optional<std::string> Pipeline::fatal_error() const {
  std::lock_guard lock(mutex_);
  return fatal_error_;
}

void Pipeline::record_fatal(const std::exception& error, const char* thread) {
  logger().fatal("pipeline_thread_failed", {{"thread", thread}, {"error", error.what()}});
  std::lock_guard lock(mutex_);
  if (!fatal_error_) fatal_error_ = fmt::format("{} thread: {}", thread, error.what());
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
    while (!stopping_) {
      metrics().reader_heartbeat.park();
      {
        std::unique_lock lock(mutex_);
        reader_wakeup_.wait(lock, [this] {
          return stopping_ || batches_.size() < options_.max_in_flight_batches;
        });
      }
      metrics().reader_heartbeat.beat();
      if (stopping_) break;
      try {
        if (!reader_connection_.connected()) {
          reconnect(reader_connection_, reader_, "reader");
          own_pending = true;
          pending_cursor.assign(1, '0');  // not = "0": GCC 12's -Wrestrict false positive at -O3 (GCC bug 105651)
          // connect() clears an interruption that stop() may have sent just before it.
          if (stopping_) break;
        }
        std::vector<StreamEntry> entries;
        if (own_pending) {
          entries = reader_.read(pending_cursor, options_.batch_size, std::nullopt);
          if (entries.empty()) {
            own_pending = false;
            logger().debug("own_pending_drained", {{"consumer", reader_.options().consumer}});
            continue;
          }
          pending_cursor = entries.back().id;
          reader_.fill_delivery_counts(entries);
        } else {
          entries = reader_.read(">", options_.batch_size, options_.poll_timeout);
        }
        failures = 0;
        if (!entries.empty()) dispatch(std::move(entries), own_pending ? EntrySource::OwnPending : EntrySource::New);
      } catch (const NoGroupError& error) {
        logger().warn("consumer_group_missing", {{"error", error.what()}, {"action", "recreating the group"}});
        try {
          reader_.ensure_group();
        } catch (const RedisConnectionError&) {
          reader_connection_.close();
        }
        own_pending = true;
        pending_cursor = "0";
      } catch (const RedisConnectionError& error) {
        if (stopping_) break;
        reader_connection_.close();
        const auto delay = backoff(++failures);
        logger().warn("redis_reconnect", {{"role", "reader"}, {"error", error.what()}, {"retry_in_ms", delay.count()}});
        sleep_unless_stopping(delay);
      } catch (const RedisStreamError& error) {
        if (stopping_) break;
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
  events.reserve(count);
  auto indices = std::make_shared<std::vector<std::size_t>>();
  indices->reserve(count);
  std::vector<std::size_t> deleted;
  const std::size_t max_bytes = sink_.max_event_bytes();
  for (std::size_t i = 0; i < count; ++i) {
    const StreamEntry& entry = batch.entries[i];
    if (entry.deleted) {
      batch.states[i] = EntryState::AckDue;
      deleted.push_back(i);
      continue;
    }
    if (entry.deliveries > options_.max_delivery_attempts) {
      batch.states[i] = EntryState::DeadLetterDue;
      batch.reasons[i] = fmt::format("delivered {} times, more than MAX_DELIVERY_ATTEMPTS ({})", entry.deliveries,
                                     options_.max_delivery_attempts);
      continue;
    }
    try {
      Event& event = events.emplace_back();
      encoder_.encode_into(entry, event);
      if (event.body.size() > max_bytes) {
        batch.states[i] = EntryState::DeadLetterDue;
        batch.reasons[i] = fmt::format("event body of {} bytes exceeds the output's maximum of {} bytes",
                                       event.body.size(), max_bytes);
        events.pop_back();
        continue;
      }
      indices->push_back(i);
    } catch (const MessageProcessingError& error) {
      events.pop_back();
      batch.states[i] = EntryState::DeadLetterDue;
      batch.reasons[i] = error.what();
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
    batches_.emplace(batch_id, std::move(batch));
  }
  if (events.size() != count) acker_wakeup_.notify_one();
  if (!events.empty()) {
    sink_.send(std::move(events), [this, batch_id, indices](std::vector<Completion> completions) {
      {
        std::lock_guard lock(mutex_);
        completions_.push_back(CompletionRecord{batch_id, indices, std::move(completions)});
      }
      acker_wakeup_.notify_one();
    });
  }
}

// ---- acker thread ----------------------------------------------------------------------------

void Pipeline::acker_loop() {
  unsigned failures = 0;
  try {
    std::unique_lock lock(mutex_);
    for (;;) {
      metrics().acker_heartbeat.beat();
      auto wake_at = Clock::now() + milliseconds(1000);
      if (!reading_stopped_) {
        wake_at = std::min(wake_at, next_claim_);
        for (const auto& [id, batch] : batches_) {
          if (std::find(batch.states.begin(), batch.states.end(), EntryState::RetryWait) != batch.states.end()) {
            wake_at = std::min(wake_at, batch.retry_at);
          }
        }
      }
      acker_wakeup_.wait_until(lock, wake_at, [this] {
        return acker_exit_ || !completions_.empty() || !ack_due_.empty() || !dead_letter_due_.empty();
      });
      apply_completions(lock);
      if (!flush_redis_work(lock)) {
        if (acker_exit_) break;
        const auto delay = backoff(++failures);
        lock.unlock();
        try {
          sleep_unless_stopping(delay);
          reconnect(acker_connection_, acker_, "acker");
        } catch (const ConnectorError& error) {
          logger().warn("redis_reconnect", {{"role", "acker"}, {"error", error.what()}});
        }
        lock.lock();
        continue;
      }
      failures = 0;
      if (acker_exit_) {
        if (completions_.empty()) break;
        continue;
      }
      if (!reading_stopped_) {
        resend_due_retries(lock);
        if (Clock::now() >= next_claim_) claim_idle_entries(lock);
      }
    }
  } catch (const std::exception& error) {
    record_fatal(error, "acker");
  }
}

void Pipeline::apply_completions(std::unique_lock<std::mutex>&) {
  const auto now = Clock::now();
  while (!completions_.empty()) {
    CompletionRecord record = std::move(completions_.front());
    completions_.pop_front();
    auto found = batches_.find(record.batch_id);
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

bool Pipeline::flush_redis_work(std::unique_lock<std::mutex>& lock) {
  if (ack_due_.empty() && dead_letter_due_.empty()) return true;
  auto acks = std::move(ack_due_);
  auto dead_letters = std::move(dead_letter_due_);
  ack_due_.clear();
  dead_letter_due_.clear();

  // The entries stay in batches_ (std::map nodes do not move) and only this thread erases them,
  // so they can be read without the lock while Redis works.
  std::vector<std::string> ids;
  ids.reserve(acks.size());
  for (const auto& [batch_id, index] : acks) ids.push_back(batches_.at(batch_id).entries[index].id);
  struct DeadLetterWork {
    const StreamEntry* entry;
    std::string reason;
  };
  std::vector<DeadLetterWork> work;
  for (const auto& [batch_id, index] : dead_letters) {
    const InFlightBatch& batch = batches_.at(batch_id);
    work.push_back({&batch.entries[index], batch.reasons[index]});
  }

  lock.unlock();
  bool acked = false;
  std::size_t dead_lettered = 0;
  std::string failure;
  try {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    acker_.ack(ids);
    acked = true;
    for (const auto& item : work) {
      acker_.dead_letter(*item.entry, item.reason, item.entry->deliveries);
      logger().warn("entry_dead_lettered", {{"entry", item.entry->id},
                                            {"stream", acker_.options().stream_key},
                                            {"dead_letter_stream", acker_.options().dead_letter_stream},
                                            {"deliveries", item.entry->deliveries},
                                            {"reason", item.reason}});
      ++dead_lettered;
      metrics().dead_lettered(item.reason).inc();
    }
  } catch (const RedisConnectionError& error) {
    failure = error.what();
    acker_connection_.close();
  } catch (const RedisStreamError& error) {
    failure = error.what();
  }
  lock.lock();

  if (acked) {
    stats_.acked += acks.size();
    metrics().entries_acked.inc(acks.size());
    metrics().observe_acked(ids);
    for (const auto& [batch_id, index] : acks) resolve(batch_id, index);
  } else {
    ack_due_.insert(ack_due_.end(), acks.begin(), acks.end());
  }
  for (std::size_t i = 0; i < dead_letters.size(); ++i) {
    if (i < dead_lettered) {
      ++stats_.dead_lettered;
      resolve(dead_letters[i].first, dead_letters[i].second);
    } else {
      dead_letter_due_.push_back(dead_letters[i]);
    }
  }
  if (!failure.empty()) {
    logger().warn("redis_ack_failed", {{"error", failure},
                                       {"acks_kept", ack_due_.size()},
                                       {"dead_letters_kept", dead_letter_due_.size()}});
    return false;
  }
  return true;
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
  sink_.send(std::move(events), [this, batch_id, shared_indices](std::vector<Completion> completions) {
    {
      std::lock_guard lock(mutex_);
      completions_.push_back(CompletionRecord{batch_id, shared_indices, std::move(completions)});
    }
    acker_wakeup_.notify_one();
  });
}

void Pipeline::claim_idle_entries(std::unique_lock<std::mutex>& lock) {
  if (batches_.size() >= options_.max_in_flight_batches) return;  // back-pressure: claim later
  const std::string cursor = claim_cursor_;
  lock.unlock();
  ClaimResult result;
  std::string failure;
  try {
    if (!acker_connection_.connected()) reconnect(acker_connection_, acker_, "acker");
    result = acker_.claim(options_.claim_min_idle, cursor, options_.batch_size);
    if (!result.deleted_ids.empty()) {
      acker_.ack(result.deleted_ids);
      logger().warn("pending_entries_deleted", {{"count", result.deleted_ids.size()},
                                                {"first", result.deleted_ids.front()},
                                                {"action", "acked: they were trimmed from the stream"}});
    }
    acker_.fill_delivery_counts(result.entries);
  } catch (const RedisConnectionError& error) {
    failure = error.what();
    acker_connection_.close();
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
    if (!started_) return;
    started_ = false;
  }
  const auto deadline = Clock::now() + options_.shutdown_grace;
  stopping_ = true;
  reader_connection_.interrupt();
  {
    std::lock_guard lock(mutex_);
    reading_stopped_ = true;
  }
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
    acker_exit_ = true;
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
