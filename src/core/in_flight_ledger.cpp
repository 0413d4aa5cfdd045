#include "core/in_flight_ledger.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/errors.hpp"
#include "observability/logger.hpp"
#include "observability/metrics.hpp"

namespace connector {
namespace {
// A retried entry is logged at its first retry and every this many after it: an output outage then
// leaves a trace per entry without a line per attempt.
constexpr unsigned kRetryLogEvery = 10;

long long elapsed_ms(InFlightLedger::Clock::time_point since, InFlightLedger::Clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
}
}  // namespace

std::vector<EntryPlan> plan_entries(const std::vector<StreamEntry>& entries, const Encoder& encoder,
                                    std::size_t max_event_bytes, unsigned max_delivery_attempts,
                                    Batch& events) {
  std::vector<EntryPlan> plans(entries.size());
  events.reserve(entries.size());
  std::size_t used = 0;  // events[0, used) are this call's
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
      if (used == events.size()) events.emplace_back();
      Event& event = events[used];
      encoder.encode_into(entry, event);
      if (event.body.size() > max_event_bytes) {
        plan = {EntryAction::DeadLetter,
                fmt::format("event body of {} bytes exceeds the output's maximum of {} bytes",
                            event.body.size(), max_event_bytes),
                Cause::TooLarge};
      } else {
        ++used;
      }
    } catch (const MessageProcessingError& error) {
      plan = {EntryAction::DeadLetter, error.what(), Cause::Unencodable};
    }
  }
  events.resize(used);
  return plans;
}

InFlightLedger::InFlightLedger(unsigned max_delivery_attempts, BackoffPolicy retry_backoff,
                               JitterSource jitter, Metrics& metrics)
    : max_delivery_attempts_(max_delivery_attempts),
      retry_backoff_(retry_backoff),
      jitter_(std::move(jitter)),
      metrics_(metrics) {}

std::uint64_t InFlightLedger::add(std::vector<StreamEntry> entries, const std::vector<EntryPlan>& plans,
                                  Clock::time_point now) {
  const std::uint64_t batch_id = next_batch_id_++;
  const std::size_t count = entries.size();
  InFlightBatch batch;
  batch.states.assign(count, EntryState::Sending);
  batch.deliveries.resize(count);
  batch.reasons.resize(count);
  batch.causes.resize(count);
  batch.retries.assign(count, 0);
  batch.accepted_mark.assign(count, accepted_total_);
  batch.unresolved = count;
  batch.started = now;
  std::size_t events = 0;
  for (std::size_t i = 0; i < count; ++i) {
    batch.deliveries[i] = entries[i].deliveries;
    switch (plans[i].action) {
      case EntryAction::Send:
        ++events;
        break;
      case EntryAction::AckTrimmed:
        batch.states[i] = EntryState::AckDue;
        ack_due_.emplace_back(batch_id, i);
        metrics_.entries_deleted_acked.inc();
        break;
      case EntryAction::DeadLetter:
        batch.states[i] = EntryState::DeadLetterDue;
        batch.reasons[i] = plans[i].reason;
        batch.causes[i] = plans[i].cause;
        dead_letter_due_.emplace_back(batch_id, i);
        break;
    }
  }
  batch.entries = std::move(entries);
  metrics_.events_sent.inc(events);
  outstanding_events_ += events;
  batches_.emplace(batch_id, std::move(batch));
  return batch_id;
}

void InFlightLedger::apply(std::uint64_t batch_id, const std::vector<std::size_t>& entry_indices,
                           const std::vector<Completion>& completions,
                           const std::function<bool()>& output_ready, Clock::time_point now) {
  accepted_total_ += static_cast<std::uint64_t>(
      std::count_if(completions.begin(), completions.end(),
                    [](const Completion& completion) { return completion.outcome == Outcome::Accepted; }));
  const auto found = batches_.find(batch_id);
  for (const Completion& completion : completions) {
    if (found == batches_.end() || completion.index >= entry_indices.size()) {
      logger().error("sink_completion_ignored", {{"batch", batch_id}, {"index", completion.index}});
      continue;
    }
    apply_one(batch_id, found->second, entry_indices[completion.index], completion, output_ready, now);
  }
}

void InFlightLedger::apply_one(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                               const Completion& completion, const std::function<bool()>& output_ready,
                               Clock::time_point now) {
  if (batch.states[index] != EntryState::Sending) {
    logger().error("sink_completion_repeated", {{"entry", batch.entries[index].id}});
    return;
  }
  --outstanding_events_;
  switch (completion.outcome) {
    case Outcome::Accepted:
      batch.states[index] = EntryState::AckDue;
      ack_due_.emplace_back(batch_id, index);
      metrics_.events_confirmed.inc();
      break;
    case Outcome::Reject:
      mark_dead_letter_due(batch_id, batch, index,
                           completion.reason.empty() ? "rejected by the output" : completion.reason,
                           completion.cause);
      break;
    case Outcome::Retry: {
      // A failed attempt counts towards max_delivery_attempts only when the output was up: ready, and
      // accepting other events since this entry's previous outcome (or since it was sent). During an
      // outage nothing is accepted, so no attempt counts, however long it lasts; the price is that a
      // lone failing entry on an idle stream is retried without counting.
      const bool output_up = output_ready() && accepted_total_ > batch.accepted_mark[index];
      batch.accepted_mark[index] = accepted_total_;
      apply_retry(batch_id, batch, index, completion, output_up, now);
      break;
    }
  }
}

void InFlightLedger::apply_retry(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                                 const Completion& completion, bool output_up, Clock::time_point now) {
  unsigned& deliveries = batch.deliveries[index];
  if (output_up) {
    if (deliveries >= max_delivery_attempts_) {
      mark_dead_letter_due(batch_id, batch, index,
                           fmt::format("failed {} times while the output accepted other events, "
                                       "MAX_DELIVERY_ATTEMPTS is {}; last: {}",
                                       deliveries, max_delivery_attempts_, completion.reason),
                           Cause::MaxDeliveries);
      return;
    }
    counts_due_.emplace_back(batch.entries[index].id, ++deliveries);
  }
  batch.states[index] = EntryState::RetryWait;
  const unsigned attempt = ++batch.retries[index];
  const auto delay = std::max(backoff(attempt), completion.retry_after);
  // One wait per batch: the earliest-due retry of the batch decides, later ones join it.
  const bool first_waiter = batch.retry_at <= now;
  if (first_waiter || now + delay < batch.retry_at) batch.retry_at = now + delay;
  metrics_.retried(completion.cause).inc();
  if (attempt == 1 || attempt % kRetryLogEvery == 0) {
    logger().warn("event_retry", {{"entry", batch.entries[index].id},
                                  {"attempt", attempt},
                                  {"retry_in_ms", delay.count()},
                                  {"reason", completion.reason}});
  }
}

void InFlightLedger::mark_dead_letter_due(std::uint64_t batch_id, InFlightBatch& batch, std::size_t index,
                                          std::string reason, Cause cause) {
  batch.states[index] = EntryState::DeadLetterDue;
  batch.reasons[index] = std::move(reason);
  batch.causes[index] = cause;
  dead_letter_due_.emplace_back(batch_id, index);
}

InFlightLedger::DueWork InFlightLedger::take_due_work(Clock::time_point now) {
  if (!dead_letter_retry_.empty() && now >= dead_letter_retry_at_) {
    dead_letter_due_.insert(dead_letter_due_.end(), dead_letter_retry_.begin(), dead_letter_retry_.end());
    dead_letter_retry_.clear();
  }
  DueWork work{std::move(ack_due_), std::move(dead_letter_due_)};
  ack_due_.clear();
  dead_letter_due_.clear();
  return work;
}

InFlightLedger::DueCounts InFlightLedger::give_back(DueWork work) {
  ack_due_.insert(ack_due_.end(), work.acks.begin(), work.acks.end());
  dead_letter_due_.insert(dead_letter_due_.end(), work.dead_letters.begin(), work.dead_letters.end());
  return {ack_due_.size(), dead_letter_due_.size()};
}

std::size_t InFlightLedger::acked(const std::vector<EntryRef>& acked, Clock::time_point now) {
  metrics_.entries_acked.inc(acked.size());
  std::size_t ended = 0;
  for (const EntryRef& ref : acked) ended += resolve(ref, now) ? 1 : 0;
  return ended;
}

std::size_t InFlightLedger::dead_letters_written(const std::vector<EntryRef>& due,
                                                 const std::vector<std::string>& failures,
                                                 Clock::time_point now) {
  bool any_failed = false;
  std::size_t ended = 0;
  for (std::size_t i = 0; i < due.size(); ++i) {
    if (failures[i].empty()) {
      metrics_.dead_lettered(batches_.at(due[i].first).causes[due[i].second]).inc();
      ended += resolve(due[i], now) ? 1 : 0;
    } else {
      any_failed = true;
      dead_letter_retry_.push_back(due[i]);
    }
  }
  dead_letter_failures_ = any_failed ? dead_letter_failures_ + 1 : 0;
  if (any_failed) dead_letter_retry_at_ = now + backoff(dead_letter_failures_);
  return ended;
}

std::vector<std::vector<StreamEntry>> InFlightLedger::take_ended_entries() {
  return std::exchange(ended_entries_, {});
}

std::vector<std::pair<std::string, unsigned>> InFlightLedger::take_delivery_counts() {
  auto counts = std::move(counts_due_);
  counts_due_.clear();
  return counts;
}

std::vector<InFlightLedger::Resend> InFlightLedger::take_due_retries(Clock::time_point now) {
  std::vector<Resend> due;
  for (auto& [id, batch] : batches_) {
    if (batch.retry_at > now) continue;
    Resend resend{id, {}};
    for (std::size_t i = 0; i < batch.states.size(); ++i) {
      if (batch.states[i] == EntryState::RetryWait) {
        batch.states[i] = EntryState::Sending;
        resend.indices.push_back(i);
      }
    }
    if (resend.indices.empty()) continue;
    outstanding_events_ += resend.indices.size();
    metrics_.events_sent.inc(resend.indices.size());
    due.push_back(std::move(resend));
  }
  return due;
}

bool InFlightLedger::resolve(const EntryRef& ref, Clock::time_point now) {
  auto found = batches_.find(ref.first);
  InFlightBatch& batch = found->second;
  // Acked entries of a stream deleted-and-recreated can be resolved twice; count each entry once.
  if (batch.states[ref.second] == EntryState::Done) return false;
  batch.states[ref.second] = EntryState::Done;
  if (--batch.unresolved != 0) return false;
  metrics_.batch_duration.observe(std::chrono::duration<double>(now - batch.started).count());
  if (logger().enabled(LogLevel::Debug)) {
    logger().debug("batch_done",
                   {{"entries", batch.entries.size()}, {"duration_ms", elapsed_ms(batch.started, now)}});
  }
  ended_entries_.push_back(std::move(batch.entries));
  batches_.erase(found);
  return true;
}

const StreamEntry& InFlightLedger::entry(const EntryRef& ref) const {
  return batches_.at(ref.first).entries[ref.second];
}

DeadLetter InFlightLedger::dead_letter(const EntryRef& ref) const {
  const InFlightBatch& batch = batches_.at(ref.first);
  return {&batch.entries[ref.second], batch.reasons[ref.second], batch.deliveries[ref.second],
          batch.causes[ref.second]};
}

std::unordered_set<std::string_view> InFlightLedger::in_flight_ids() const {
  std::unordered_set<std::string_view> ids;
  for (const auto& [id, batch] : batches_) {
    for (std::size_t i = 0; i < batch.entries.size(); ++i) {
      if (batch.states[i] != EntryState::Done) ids.insert(batch.entries[i].id);
    }
  }
  return ids;
}

void InFlightLedger::drop_in_flight(std::vector<StreamEntry>& entries) const {
  const auto in_flight = in_flight_ids();
  std::erase_if(entries, [&](const StreamEntry& entry) { return in_flight.count(entry.id) != 0; });
}

std::optional<InFlightLedger::Clock::time_point> InFlightLedger::next_retry() const {
  std::optional<Clock::time_point> earliest;
  for (const auto& [id, batch] : batches_) {
    if (std::find(batch.states.begin(), batch.states.end(), EntryState::RetryWait) == batch.states.end())
      continue;
    if (!earliest || batch.retry_at < *earliest) earliest = batch.retry_at;
  }
  return earliest;
}

std::optional<InFlightLedger::Clock::time_point> InFlightLedger::next_dead_letter_retry() const {
  if (dead_letter_retry_.empty()) return std::nullopt;
  return dead_letter_retry_at_;
}

std::size_t InFlightLedger::unresolved() const {
  std::size_t count = 0;
  for (const auto& [id, batch] : batches_) count += batch.unresolved;
  return count;
}

}  // namespace connector
