#include "eventhubs/delivery_tracker.hpp"

#include <algorithm>
#include <exception>
#include <iterator>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <boost/smart_ptr/make_local_shared.hpp>

#include "observability/logger.hpp"

namespace connector {

DeliveryTracker::DeliveryTracker(std::size_t max_in_flight, std::function<void()> request_flush,
                                 std::size_t lanes, bool group_by_key, SpentBatches* spent)
    : max_in_flight_(std::max<std::size_t>(1, max_in_flight)),
      request_flush_(std::move(request_flush)),
      group_by_key_(group_by_key),
      spent_(spent),
      lanes_(std::max<std::size_t>(1, lanes)) {}

std::size_t DeliveryTracker::lane_for(const Event& event) {
  if (lanes_.size() == 1) return 0;
  if (event.partition_key.empty()) return next_keyless_lane_++ % lanes_.size();
  // Only has to be stable while this process runs: order is per link, and a link lives no longer.
  return std::hash<std::string_view>{}(event.partition_key) % lanes_.size();
}

void DeliveryTracker::add(Batch batch, CompletionCallback done) {
  if (batch.empty()) return;
  auto state = boost::make_local_shared<BatchState>();
  state->events = std::move(batch);
  state->done = std::move(done);
  state->unreported = state->events.size();
  state->spent = spent_;
  std::vector<std::size_t> first_new(lanes_.size());
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) first_new[lane] = lanes_[lane].size();
  for (std::size_t i = 0; i < state->events.size(); ++i) {
    const std::size_t lane = lane_for(state->events[i]);
    lanes_[lane].push_back(Item{state, i, 0, lane});
  }
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
    auto& queue = lanes_[lane];
    if (group_by_key_) group_by_key(queue, first_new[lane]);
    // Numbered in lane order, after grouping: requeue() restores exactly the order they wait in.
    for (std::size_t i = first_new[lane]; i < queue.size(); ++i) queue[i].sequence = next_sequence_++;
  }
  queued_count_ += state->events.size();
}

// Only the order per key matters (a key is a partition), so the new events of a lane are regrouped by
// key, the groups in the order of their first event: B A B A becomes B B A A.
void DeliveryTracker::group_by_key(std::deque<Item>& lane, std::size_t first) {
  auto key = [](const Item& item) -> std::string_view { return item.batch->events[item.index].partition_key; };
  const auto begin = lane.begin() + static_cast<std::ptrdiff_t>(first);
  const bool one_key = std::all_of(begin, lane.end(), [&](const Item& item) { return key(item) == key(*begin); });
  if (one_key) return;
  std::unordered_map<std::string_view, std::size_t> group_of;
  std::vector<std::pair<std::size_t, Item>> keyed;
  keyed.reserve(lane.size() - first);
  for (auto it = begin; it != lane.end(); ++it) {
    const std::size_t group = group_of.try_emplace(key(*it), group_of.size()).first->second;
    keyed.emplace_back(group, std::move(*it));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  auto out = begin;
  for (auto& [group, item] : keyed) *out++ = std::move(item);
}

const Event* DeliveryTracker::next(std::size_t lane) const {
  const auto& queue = lanes_[lane];
  if (queue.empty() || full()) return nullptr;
  const Item& item = queue.front();
  return &item.batch->events[item.index];
}

const Event* DeliveryTracker::waiting(std::size_t lane, std::size_t offset) const {
  const auto& queue = lanes_[lane];
  if (offset >= queue.size()) return nullptr;
  const Item& item = queue[offset];
  return &item.batch->events[item.index];
}

bool DeliveryTracker::goes_alone(std::size_t lane, std::size_t offset) const {
  const auto& queue = lanes_[lane];
  return offset < queue.size() && queue[offset].alone;
}

DeliveryId DeliveryTracker::sent(Clock::time_point now, std::size_t lane, std::size_t count) {
  auto& queue = lanes_[lane];
  count = std::clamp<std::size_t>(count, 1, queue.size());
  const DeliveryId id = next_id_++;
  if (in_flight_.empty()) first_id_ = id;
  Sent& sent = in_flight_.emplace_back(Sent{std::move(queue.front()), {}, now});
  queue.pop_front();
  if (count > 1) {
    sent.more.reserve(count - 1);
    for (std::size_t i = 1; i < count; ++i) {
      sent.more.push_back(std::move(queue.front()));
      queue.pop_front();
    }
  }
  queued_count_ -= count;
  in_flight_count_ += count;
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

std::size_t DeliveryTracker::events_in(DeliveryId id) const {
  const Sent* sent = find(id);
  return sent == nullptr ? 0 : 1 + sent->more.size();
}

std::size_t DeliveryTracker::lane_of(DeliveryId id) const {
  const Sent* sent = find(id);
  return sent == nullptr ? 0 : sent->item.lane;
}

bool DeliveryTracker::settle(DeliveryId id, Outcome outcome, std::string reason,
                             std::chrono::milliseconds retry_after, Cause cause) {
  Taken taken = take(id);
  if (!taken.first.batch) return false;
  for (auto& item : taken.more) complete(item, outcome, reason, retry_after, cause);
  complete(taken.first, outcome, std::move(reason), retry_after, cause);
  return true;
}

bool DeliveryTracker::split(DeliveryId id) {
  Taken taken = take(id);
  if (!taken.first.batch) return false;
  std::vector<Item> items = std::move(taken.more);
  items.push_back(std::move(taken.first));
  for (auto& item : items) item.alone = true;
  put_back(std::move(items));
  return true;
}

// Takes the events of `id` off the wire (none when `id` is not on it); its slot stays until every
// older one is answered. Moves, so that answering a single event allocates nothing.
DeliveryTracker::Taken DeliveryTracker::take(DeliveryId id) {
  Taken taken;
  Sent* sent = find(id);
  if (sent == nullptr) return taken;
  taken.first = std::move(sent->item);
  taken.more = std::move(sent->more);
  sent->item.batch.reset();
  sent->more.clear();
  in_flight_count_ -= 1 + taken.more.size();
  while (!in_flight_.empty() && !in_flight_.front().item.batch) {
    in_flight_.pop_front();
    ++first_id_;
  }
  return taken;
}

std::size_t DeliveryTracker::requeue() {
  std::vector<Item> unconfirmed;
  unconfirmed.reserve(in_flight_count_);
  for (auto& sent : in_flight_) {
    if (!sent.item.batch) continue;
    unconfirmed.push_back(std::move(sent.item));
    for (auto& item : sent.more) unconfirmed.push_back(std::move(item));
  }
  in_flight_.clear();
  in_flight_count_ = 0;
  put_back(std::move(unconfirmed));
  return queued_count_;
}

// A resend reorders ids, so the order they waited in (sequence), not the id, restores the original
// order. Each lane waits in sequence order; what comes back usually goes in front of it, but the events
// of a split batch may already wait there, behind which later deliveries must not jump: merged.
void DeliveryTracker::put_back(std::vector<Item> items) {
  auto by_sequence = [](const Item& a, const Item& b) { return a.sequence < b.sequence; };
  std::sort(items.begin(), items.end(), by_sequence);
  queued_count_ += items.size();
  for (std::size_t lane = 0; lane < lanes_.size(); ++lane) {
    auto& queue = lanes_[lane];
    std::deque<Item> merged;
    for (auto& item : items) {
      if (item.lane != lane) continue;
      while (!queue.empty() && queue.front().sequence < item.sequence) {
        merged.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      merged.push_back(std::move(item));
    }
    if (merged.empty()) continue;
    for (auto& rest : queue) merged.push_back(std::move(rest));
    queue.swap(merged);
  }
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
  std::vector<BatchRef> batches;
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
