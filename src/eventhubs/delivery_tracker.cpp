#include "eventhubs/delivery_tracker.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <string_view>

#include "observability/logger.hpp"

namespace connector {

DeliveryTracker::DeliveryTracker(std::size_t max_in_flight, std::function<void()> request_flush,
                                 std::size_t lanes)
    : max_in_flight_(std::max<std::size_t>(1, max_in_flight)),
      request_flush_(std::move(request_flush)),
      lanes_(std::max<std::size_t>(1, lanes)) {}

std::size_t DeliveryTracker::lane_for(const Event& event) {
  if (lanes_.size() == 1) return 0;
  if (event.partition_key.empty()) return next_keyless_lane_++ % lanes_.size();
  // Only has to be stable while this process runs: order is per link, and a link lives no longer.
  return std::hash<std::string_view>{}(event.partition_key) % lanes_.size();
}

void DeliveryTracker::add(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  auto state = std::make_shared<BatchState>();
  state->events = std::move(batch);
  state->done = std::move(done);
  state->unreported = state->events.size();
  for (std::size_t i = 0; i < state->events.size(); ++i) {
    const std::size_t lane = lane_for(state->events[i]);
    lanes_[lane].push_back(Item{state, i, next_sequence_++, lane});
  }
  queued_count_ += state->events.size();
}

const Event* DeliveryTracker::next(std::size_t lane) const {
  const auto& queue = lanes_[lane];
  if (queue.empty() || full()) return nullptr;
  const Item& item = queue.front();
  return &item.batch->events[item.index];
}

DeliveryId DeliveryTracker::sent(Clock::time_point now, std::size_t lane) {
  auto& queue = lanes_[lane];
  const DeliveryId id = next_id_++;
  if (in_flight_.empty()) first_id_ = id;
  in_flight_.push_back(Sent{std::move(queue.front()), now});
  queue.pop_front();
  --queued_count_;
  ++in_flight_count_;
  return id;
}

void DeliveryTracker::complete_next(Outcome outcome, Cause cause, std::string reason, std::size_t lane) {
  auto& queue = lanes_[lane];
  const Item item = std::move(queue.front());
  queue.pop_front();
  --queued_count_;
  complete(item, outcome, std::move(reason), {}, cause);
}

DeliveryTracker::Sent* DeliveryTracker::find(DeliveryId id) {
  if (id < first_id_ || id - first_id_ >= in_flight_.size()) return nullptr;
  Sent& sent = in_flight_[id - first_id_];
  return sent.item.batch ? &sent : nullptr;
}

const DeliveryTracker::Sent* DeliveryTracker::find(DeliveryId id) const {
  return const_cast<DeliveryTracker*>(this)->find(id);
}

const Event* DeliveryTracker::event(DeliveryId id) const {
  const Sent* sent = find(id);
  return sent == nullptr ? nullptr : &sent->item.batch->events[sent->item.index];
}

std::size_t DeliveryTracker::lane_of(DeliveryId id) const {
  const Sent* sent = find(id);
  return sent == nullptr ? 0 : sent->item.lane;
}

bool DeliveryTracker::settle(DeliveryId id, Outcome outcome, std::string reason,
                             std::chrono::milliseconds retry_after, Cause cause) {
  Sent* sent = find(id);
  if (sent == nullptr) return false;
  const Item item = std::move(sent->item);
  sent->item.batch.reset();
  --in_flight_count_;
  while (!in_flight_.empty() && !in_flight_.front().item.batch) {
    in_flight_.pop_front();
    ++first_id_;
  }
  complete(item, outcome, std::move(reason), retry_after, cause);
  return true;
}

std::size_t DeliveryTracker::requeue() {
  std::vector<Item> unconfirmed;
  unconfirmed.reserve(in_flight_count_);
  for (auto& sent : in_flight_) {
    if (sent.item.batch) unconfirmed.push_back(std::move(sent.item));
  }
  in_flight_.clear();
  in_flight_count_ = 0;
  // A resend reorders ids, so the add() order (sequence), not the id, restores the original order;
  // inserting the latest first at each lane's front leaves them in that order.
  std::sort(unconfirmed.begin(), unconfirmed.end(),
            [](const Item& a, const Item& b) { return a.sequence > b.sequence; });
  for (auto& item : unconfirmed) lanes_[item.lane].push_front(std::move(item));
  queued_count_ += unconfirmed.size();
  return queued_count_;
}

bool DeliveryTracker::waiting_since_before(Clock::time_point cutoff) const {
  // The front is always unanswered: settle() drops answered ones from the front.
  return !in_flight_.empty() && in_flight_.front().at < cutoff;
}

void DeliveryTracker::complete(const Item& item, Outcome outcome, std::string reason,
                               std::chrono::milliseconds retry_after, Cause cause) {
  BatchState& batch = *item.batch;
  if (batch.ready.empty()) {
    const bool first = to_flush_.empty();
    to_flush_.push_back(item.batch);
    if (first && request_flush_) request_flush_();
    // This burst of answers can complete at most what is on the wire (plus this one): one allocation.
    batch.ready.reserve(std::min(batch.unreported, in_flight_count_ + 1));
  }
  --batch.unreported;
  batch.ready.push_back(Completion{item.index, outcome, std::move(reason), retry_after, cause});
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
  const std::size_t unconfirmed = queued_count_ + in_flight_count_;
  for (auto& lane : lanes_) lane.clear();
  in_flight_.clear();
  in_flight_count_ = 0;
  queued_count_ = 0;
  to_flush_.clear();
  return unconfirmed;
}

}  // namespace connector
