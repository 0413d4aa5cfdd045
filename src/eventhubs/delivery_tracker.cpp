#include "eventhubs/delivery_tracker.hpp"

#include <algorithm>
#include <exception>
#include <iterator>

#include "observability/logger.hpp"

namespace connector {

DeliveryTracker::DeliveryTracker(std::size_t max_in_flight, std::function<void()> request_flush)
    : max_in_flight_(std::max<std::size_t>(1, max_in_flight)), request_flush_(std::move(request_flush)) {}

void DeliveryTracker::add(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  auto state = std::make_shared<BatchState>();
  state->events = std::move(batch);
  state->done = std::move(done);
  for (std::size_t i = 0; i < state->events.size(); ++i) queue_.push_back(Item{state, i, next_sequence_++});
}

const Event* DeliveryTracker::next() const {
  if (queue_.empty() || in_flight_.size() >= max_in_flight_) return nullptr;
  const Item& item = queue_.front();
  return &item.batch->events[item.index];
}

DeliveryId DeliveryTracker::sent(Clock::time_point now) {
  const DeliveryId id = next_id_++;
  in_flight_.emplace(id, Sent{std::move(queue_.front()), now});
  queue_.pop_front();
  return id;
}

void DeliveryTracker::complete_next(Outcome outcome, std::string reason) {
  const Item item = std::move(queue_.front());
  queue_.pop_front();
  complete(item, outcome, std::move(reason), {});
}

const Event* DeliveryTracker::event(DeliveryId id) const {
  const auto it = in_flight_.find(id);
  return it == in_flight_.end() ? nullptr : &it->second.item.batch->events[it->second.item.index];
}

bool DeliveryTracker::settle(DeliveryId id, Outcome outcome, std::string reason,
                             std::chrono::milliseconds retry_after) {
  const auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return false;
  const Item item = std::move(it->second.item);
  in_flight_.erase(it);
  complete(item, outcome, std::move(reason), retry_after);
  return true;
}

std::size_t DeliveryTracker::requeue() {
  std::vector<Item> unconfirmed;
  unconfirmed.reserve(in_flight_.size());
  for (auto& [id, sent] : in_flight_) unconfirmed.push_back(std::move(sent.item));
  in_flight_.clear();
  // A resend reorders ids, so the add() order (sequence), not the id, restores the original order.
  std::sort(unconfirmed.begin(), unconfirmed.end(),
            [](const Item& a, const Item& b) { return a.sequence < b.sequence; });
  queue_.insert(queue_.begin(), std::make_move_iterator(unconfirmed.begin()),
                std::make_move_iterator(unconfirmed.end()));
  return queue_.size();
}

bool DeliveryTracker::waiting_since_before(Clock::time_point cutoff) const {
  return !in_flight_.empty() && in_flight_.begin()->second.at < cutoff;
}

void DeliveryTracker::complete(const Item& item, Outcome outcome, std::string reason,
                               std::chrono::milliseconds retry_after) {
  BatchState& batch = *item.batch;
  if (batch.ready.empty()) {
    const bool first = to_flush_.empty();
    to_flush_.push_back(item.batch);
    if (first && request_flush_) request_flush_();
  }
  batch.ready.push_back(Completion{item.index, outcome, std::move(reason), retry_after});
}

void DeliveryTracker::flush() {
  std::vector<std::shared_ptr<BatchState>> batches;
  batches.swap(to_flush_);
  for (auto& batch : batches) {
    std::vector<Completion> completions;
    completions.swap(batch->ready);
    try {
      batch->done(std::move(completions));
    } catch (const std::exception& e) {
      logger().error("eventhubs_completion_callback_failed", {{"error", e.what()}});
    }
  }
}

std::size_t DeliveryTracker::abandon() {
  const std::size_t unconfirmed = queue_.size() + in_flight_.size();
  queue_.clear();
  in_flight_.clear();
  to_flush_.clear();
  return unconfirmed;
}

}  // namespace connector
