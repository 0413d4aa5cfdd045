#pragma once
// At-least-once bookkeeping of the Event Hubs sink, without Proton: what waits, what is on the wire,
// what is done and not yet reported.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <boost/smart_ptr/local_shared_ptr.hpp>

#include "sinks/sink.hpp"
#include "sinks/spent_batches.hpp"

namespace connector {

/// Names one send of one event. A resent event gets a new one, so a late answer to an earlier send
/// (on a connection given up on) matches nothing.
using DeliveryId = std::uint64_t;

/// Events waiting to be sent (in order, per lane), events sent and waiting for their answer, and the
/// completions gathered per batch until flush() reports them. Each event is reported exactly once,
/// unless abandon() forgets it (then never). Not thread-safe: the sink's container thread owns it.
///
/// A lane is one sender link. Events with the same partition key always take the same lane, so their
/// order on the wire is the order of add(); an event without a key takes the lanes in turn.
///
/// One delivery may carry several events (an Event Hubs batch): sent(now, lane, count) puts the first
/// `count` waiting events of a lane on the wire under one id, and its answer settles them all. With
/// `group_by_key`, add() orders each batch's events within a lane by partition key (keeping their order
/// per key), so that events of one key wait next to each other and can share a delivery.
class DeliveryTracker {
 public:
  using Clock = std::chrono::steady_clock;

  /// At most `max_in_flight` events are on the wire at once, over all lanes. `request_flush` is called
  /// when the first completion since the last flush() is gathered: the owner then schedules a flush(),
  /// so that completions of one burst reach each batch's callback together. A batch the tracker is done
  /// with (every event reported or forgotten, none on the wire) goes to `spent` when given (it must
  /// outlive the tracker).
  DeliveryTracker(std::size_t max_in_flight, std::function<void()> request_flush, std::size_t lanes = 1,
                  bool group_by_key = false, SpentBatches* spent = nullptr);

  /// Queues every event of `batch` in its lane, behind what already waits; `done` receives their
  /// completions.
  void add(Batch batch, CompletionCallback done);

  /// The event to send next on `lane`; null when none waits there or `max_in_flight` events are on
  /// the wire.
  const Event* next(std::size_t lane = 0) const;
  /// The event `offset` places behind next(lane) (0: next(lane) itself), or null; ignores room on the wire.
  const Event* waiting(std::size_t lane, std::size_t offset) const;
  /// True when waiting(lane, offset) must travel in a delivery of its own: a batch that held it was
  /// rejected.
  bool goes_alone(std::size_t lane, std::size_t offset = 0) const;
  /// How many more events may go on the wire now.
  std::size_t room() const { return max_in_flight_ - std::min(max_in_flight_, in_flight_count_); }
  /// The id the next sent() returns (a delivery's tag is written before its events are counted).
  DeliveryId next_id() const { return next_id_; }
  /// The first `count` (≥ 1) waiting events of `lane` are on the wire from `now`, as one delivery;
  /// returns the id its answer will carry.
  DeliveryId sent(Clock::time_point now, std::size_t lane = 0, std::size_t count = 1);
  /// The event next(lane) returned will not be sent: it is completed with `outcome` (e.g. too large).
  void complete_next(Outcome outcome, Cause cause, std::string reason, std::size_t lane = 0);
  /// The lane of the event sent as `id` (which must be on the wire).
  std::size_t lane_of(DeliveryId id) const;
  /// True when `max_in_flight` events are on the wire: an answer frees room on every lane.
  bool full() const { return in_flight_count_ >= max_in_flight_; }
  std::size_t lanes() const { return lanes_.size(); }

  /// The (first) event sent as `id`, or null when `id` is not on the wire.
  const Event* event(DeliveryId id) const;
  /// How many events the delivery `id` carries; 0 when `id` is not on the wire.
  std::size_t events_in(DeliveryId id) const;
  /// The answer to `id`, for every event it carries; false (and nothing happens) when `id` is not on the
  /// wire.
  bool settle(DeliveryId id, Outcome outcome, std::string reason = {},
              std::chrono::milliseconds retry_after = {}, Cause cause = Cause::None);
  /// The delivery `id` (a batch) was refused as a whole: its events go back in front of their lane, in
  /// order, each to be sent in a delivery of its own, so that only the one at fault is refused again.
  /// False when `id` is not on the wire.
  bool split(DeliveryId id);

  /// The connection is gone: every event on the wire goes back in front of its lane, in its original
  /// order, to be sent again. Returns how many events now wait.
  std::size_t requeue();
  /// True when an event on the wire was sent before `cutoff` and has no answer yet.
  bool waiting_since_before(Clock::time_point cutoff) const;

  /// Hands the gathered completions to their batches' callbacks, one call per batch. A callback that
  /// throws is logged and does not stop the others.
  void flush();
  /// Forgets every event (queued, on the wire, completed but not flushed) without reporting it: they
  /// stay pending in Redis. Returns how many were not confirmed.
  std::size_t abandon();

  std::size_t queued() const { return queued_count_; }
  std::size_t in_flight() const { return in_flight_count_; }

 private:
  struct BatchState {
    Batch events;
    CompletionCallback done;
    std::vector<Completion> ready;  // completed, not yet flushed
    std::size_t unreported = 0;     // events not yet in `ready` or flushed: what `ready` may grow to
    SpentBatches* spent = nullptr;  // where `events` go at the end

    BatchState() = default;
    BatchState(const BatchState&) = delete;
    BatchState& operator=(const BatchState&) = delete;
    // The last Item of the batch is gone: no event of it is waiting or on the wire any more.
    ~BatchState() {
      if (spent != nullptr) spent->give(std::move(events));
    }
  };
  // Each event's Item shares its batch. The tracker lives on one thread, so the count need not be atomic:
  // std::shared_ptr paid two locked instructions per event.
  using BatchRef = boost::local_shared_ptr<BatchState>;
  struct Item {
    BatchRef batch;
    std::size_t index = 0;
    std::uint64_t sequence = 0;  // order of add(): puts requeued events back in order
    std::size_t lane = 0;
    bool alone = false;  // a batch holding it was refused: it goes in a delivery of its own
  };
  // One per id from first_id_ on; answered ones stay (empty batch) until every older one is answered,
  // so that finding an id is an index, and sending or answering a single event allocates nothing in the
  // steady state. A batch keeps its first event in `item` and the others in `more`.
  struct Sent {
    Item item;
    std::vector<Item> more;
    Clock::time_point at;
  };

  void complete(const Item& item, Outcome outcome, std::string reason, std::chrono::milliseconds retry_after,
                Cause cause);
  Sent* find(DeliveryId id);
  const Sent* find(DeliveryId id) const;
  std::size_t lane_for(const Event& event);
  void group_by_key(std::deque<Item>& lane, std::size_t first);
  void put_back(std::vector<Item> items);
  struct Taken {
    Item first;  // no batch: nothing was taken
    std::vector<Item> more;
  };
  Taken take(DeliveryId id);

  const std::size_t max_in_flight_;
  const std::function<void()> request_flush_;
  const bool group_by_key_;
  SpentBatches* const spent_;
  std::vector<std::deque<Item>> lanes_;
  std::deque<Sent> in_flight_;  // in_flight_[i] was sent as first_id_ + i
  DeliveryId first_id_ = 1;
  std::size_t in_flight_count_ = 0;  // entries of in_flight_ still waiting for their answer
  std::size_t queued_count_ = 0;
  std::vector<BatchRef> to_flush_;  // batches with completions in `ready`
  std::uint64_t next_sequence_ = 0;
  std::size_t next_keyless_lane_ = 0;
  DeliveryId next_id_ = 1;
};

}  // namespace connector
