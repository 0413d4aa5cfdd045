// DeliveryTracker: the Event Hubs sink's at-least-once bookkeeping, without Proton or a network.
#include "eventhubs/delivery_tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace connector {
namespace {

using std::chrono::milliseconds;
using Clock = DeliveryTracker::Clock;

Batch make_batch(const std::string& prefix, std::size_t size) {
  Batch batch;
  for (std::size_t i = 0; i < size; ++i) {
    Event event;
    event.entry_id = prefix + std::to_string(i);
    batch.push_back(event);
  }
  return batch;
}

/// Records every callback call: one vector of completions per call, per batch name.
struct Reports {
  std::map<std::string, std::vector<std::vector<Completion>>> calls;
  CompletionCallback callback(const std::string& batch) {
    return [this, batch](std::vector<Completion> completions) {
      calls[batch].push_back(std::move(completions));
    };
  }
};

/// Sends what next() offers and returns the ids in send order, with the entry ids sent.
std::vector<DeliveryId> send_all(DeliveryTracker& tracker, std::vector<std::string>* sent = nullptr,
                                 Clock::time_point at = Clock::now()) {
  std::vector<DeliveryId> ids;
  while (const Event* event = tracker.next()) {
    if (sent != nullptr) sent->push_back(event->entry_id);
    ids.push_back(tracker.sent(at));
  }
  return ids;
}

TEST(delivery_tracker_test, a_batch_goes_to_the_spent_batches_once_no_event_of_it_is_left) {
  SpentBatches spent;
  DeliveryTracker tracker(100, [] {}, 1, false, &spent);
  Reports reports;
  tracker.add(make_batch("a", 2), reports.callback("a"));
  const auto ids = send_all(tracker);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_TRUE(tracker.settle(ids[0], Outcome::Accepted));
  tracker.flush();
  EXPECT_EQ(spent.batches(), 0u);  // its second event is still on the wire
  EXPECT_TRUE(tracker.settle(ids[1], Outcome::Accepted));
  EXPECT_EQ(spent.batches(), 0u);  // reported, not yet flushed
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 2u);
  Batch back = spent.take();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].entry_id, "a1");

  // Forgotten events (the sink stopped) are given back too: nothing reads them any more.
  tracker.add(make_batch("b", 3), reports.callback("b"));
  send_all(tracker);
  EXPECT_EQ(tracker.abandon(), 3u);
  EXPECT_EQ(spent.take().size(), 3u);
}

TEST(delivery_tracker_test, reports_each_event_once_per_batch_at_flush) {
  int flush_requests = 0;
  DeliveryTracker tracker(100, [&] { ++flush_requests; });
  Reports reports;
  tracker.add(make_batch("a", 3), reports.callback("a"));
  tracker.add(make_batch("b", 2), reports.callback("b"));
  const auto ids = send_all(tracker);
  ASSERT_EQ(ids.size(), 5u);
  EXPECT_TRUE(tracker.settle(ids[0], Outcome::Accepted));
  EXPECT_TRUE(tracker.settle(ids[4], Outcome::Reject, "bad"));
  EXPECT_TRUE(tracker.settle(ids[1], Outcome::Retry, "busy", milliseconds(4000), Cause::ServerBusy));
  EXPECT_FALSE(tracker.settle(ids[1], Outcome::Accepted));  // answered already
  EXPECT_EQ(flush_requests, 1);                             // one per burst, not per completion
  EXPECT_TRUE(reports.calls.empty());                       // nothing before flush()
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 1u);
  ASSERT_EQ(reports.calls["a"][0].size(), 2u);
  EXPECT_EQ(reports.calls["a"][0][0].index, 0u);
  EXPECT_EQ(reports.calls["a"][0][1].outcome, Outcome::Retry);
  EXPECT_EQ(reports.calls["a"][0][1].retry_after, milliseconds(4000));
  EXPECT_EQ(reports.calls["a"][0][1].cause, Cause::ServerBusy);
  ASSERT_EQ(reports.calls["b"].size(), 1u);
  EXPECT_EQ(reports.calls["b"][0][0].index, 1u);
  EXPECT_EQ(reports.calls["b"][0][0].reason, "bad");
  EXPECT_TRUE(tracker.settle(ids[2], Outcome::Accepted));
  EXPECT_EQ(flush_requests, 2);  // a new burst after the flush
  EXPECT_EQ(tracker.in_flight(), 1u);
}

TEST(delivery_tracker_test, at_most_max_in_flight_are_offered) {
  DeliveryTracker tracker(2, [] {});
  Reports reports;
  tracker.add(make_batch("a", 5), reports.callback("a"));
  const auto ids = send_all(tracker);
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(tracker.queued(), 3u);
  tracker.settle(ids[0], Outcome::Accepted);
  EXPECT_NE(tracker.next(), nullptr);
}

TEST(delivery_tracker_test, requeue_puts_unanswered_events_back_in_order_with_new_ids) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 4), reports.callback("a"));
  std::vector<std::string> first;
  const auto old_ids = send_all(tracker, &first);
  tracker.settle(old_ids[1], Outcome::Accepted);
  EXPECT_EQ(tracker.requeue(), 3u);
  EXPECT_EQ(tracker.in_flight(), 0u);
  tracker.add(make_batch("b", 1), reports.callback("b"));  // behind the resent ones
  std::vector<std::string> again;
  const auto new_ids = send_all(tracker, &again);
  EXPECT_EQ(again, (std::vector<std::string>{"a0", "a2", "a3", "b0"}));
  // An answer to a send of the dropped connection matches nothing.
  EXPECT_FALSE(tracker.settle(old_ids[0], Outcome::Accepted));
  for (DeliveryId id : new_ids) EXPECT_TRUE(tracker.settle(id, Outcome::Accepted));
  tracker.flush();
  std::size_t reported = 0;
  for (const auto& call : reports.calls["a"]) reported += call.size();
  EXPECT_EQ(reported, 4u);  // each of a0..a3 exactly once
}

TEST(delivery_tracker_test, knows_the_oldest_unanswered_send) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 2), reports.callback("a"));
  const auto t0 = Clock::now();
  const DeliveryId first = tracker.sent(t0);
  tracker.sent(t0 + milliseconds(500));
  EXPECT_FALSE(tracker.waiting_since_before(t0));
  EXPECT_TRUE(tracker.waiting_since_before(t0 + milliseconds(1)));
  tracker.settle(first, Outcome::Accepted);
  EXPECT_FALSE(tracker.waiting_since_before(t0 + milliseconds(500)));
  EXPECT_TRUE(tracker.waiting_since_before(t0 + milliseconds(501)));
}

TEST(delivery_tracker_test, complete_next_reports_without_sending) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 2), reports.callback("a"));
  tracker.complete_next(Outcome::Reject, Cause::TooLarge, "too large");
  EXPECT_EQ(tracker.next()->entry_id, "a1");
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 1u);
  EXPECT_EQ(reports.calls["a"][0][0].outcome, Outcome::Reject);
  EXPECT_EQ(reports.calls["a"][0][0].reason, "too large");
  EXPECT_EQ(reports.calls["a"][0][0].cause, Cause::TooLarge);
}

TEST(delivery_tracker_test, abandon_forgets_everything_unreported) {
  DeliveryTracker tracker(2, [] {});
  Reports reports;
  tracker.add(make_batch("a", 4), reports.callback("a"));
  const auto ids = send_all(tracker);
  tracker.settle(ids[0], Outcome::Accepted);  // completed, not flushed
  EXPECT_EQ(tracker.abandon(), 3u);           // one on the wire, two queued
  tracker.flush();
  EXPECT_TRUE(reports.calls.empty());
  EXPECT_FALSE(tracker.settle(ids[1], Outcome::Accepted));
  EXPECT_EQ(tracker.next(), nullptr);
}

TEST(delivery_tracker_test, a_throwing_callback_does_not_stop_the_others) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 1), [](std::vector<Completion>) { throw std::runtime_error("boom"); });
  tracker.add(make_batch("b", 1), reports.callback("b"));
  for (DeliveryId id : send_all(tracker)) tracker.settle(id, Outcome::Accepted);
  tracker.flush();
  EXPECT_EQ(reports.calls["b"].size(), 1u);
}

Batch keyed_batch(const std::vector<std::string>& keys) {
  Batch batch = make_batch("k", keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) batch[i].partition_key = keys[i];
  return batch;
}

/// The entry ids next(lane) offers on each lane, sent in turn; ids by lane.
std::vector<std::vector<std::string>> send_all_lanes(DeliveryTracker& tracker,
                                                     std::vector<DeliveryId>* ids = nullptr) {
  std::vector<std::vector<std::string>> sent(tracker.lanes());
  for (std::size_t lane = 0; lane < tracker.lanes(); ++lane) {
    while (const Event* event = tracker.next(lane)) {
      sent[lane].push_back(event->entry_id);
      const DeliveryId id = tracker.sent(Clock::now(), lane);
      EXPECT_EQ(tracker.lane_of(id), lane);
      if (ids != nullptr) ids->push_back(id);
    }
  }
  return sent;
}

TEST(delivery_tracker_test, one_partition_key_takes_one_lane_in_order_and_keyless_events_take_turns) {
  DeliveryTracker tracker(100, [] {}, 3);
  Reports reports;
  tracker.add(keyed_batch({"x", "", "y", "x", "", "", "y", "x"}), reports.callback("a"));
  const auto sent = send_all_lanes(tracker);
  std::map<std::string, std::size_t> lane_of_entry;
  for (std::size_t lane = 0; lane < sent.size(); ++lane) {
    for (const auto& id : sent[lane]) lane_of_entry[id] = lane;
    // Within a lane, the order of add(): a lane is one link, which keeps it.
    EXPECT_TRUE(std::is_sorted(sent[lane].begin(), sent[lane].end())) << lane;
  }
  ASSERT_EQ(lane_of_entry.size(), 8u);
  EXPECT_EQ(lane_of_entry["k0"], lane_of_entry["k3"]);  // "x"
  EXPECT_EQ(lane_of_entry["k0"], lane_of_entry["k7"]);
  EXPECT_EQ(lane_of_entry["k2"], lane_of_entry["k6"]);  // "y"
  // Three keyless events over three lanes: one each.
  EXPECT_EQ((std::set<std::size_t>{lane_of_entry["k1"], lane_of_entry["k4"], lane_of_entry["k5"]}).size(), 3u);
}

TEST(delivery_tracker_test, max_in_flight_is_shared_by_all_lanes) {
  DeliveryTracker tracker(2, [] {}, 2);
  Reports reports;
  tracker.add(make_batch("a", 6), reports.callback("a"));  // keyless: 3 per lane
  std::vector<DeliveryId> ids;
  const auto sent = send_all_lanes(tracker, &ids);
  EXPECT_EQ(sent[0].size() + sent[1].size(), 2u);
  EXPECT_TRUE(tracker.full());
  EXPECT_EQ(tracker.next(1), nullptr);
  tracker.settle(ids[0], Outcome::Accepted);
  EXPECT_FALSE(tracker.full());
  EXPECT_NE(tracker.next(1), nullptr);  // an answer on lane 0 makes room on lane 1 too
}

TEST(delivery_tracker_test, requeue_puts_each_lanes_unanswered_events_back_in_order) {
  DeliveryTracker tracker(100, [] {}, 2);
  Reports reports;
  tracker.add(make_batch("a", 6), reports.callback("a"));  // keyless: a0 a2 a4 | a1 a3 a5
  std::vector<DeliveryId> ids;
  const auto first = send_all_lanes(tracker, &ids);
  ASSERT_EQ(first, (std::vector<std::vector<std::string>>{{"a0", "a2", "a4"}, {"a1", "a3", "a5"}}));
  tracker.settle(ids[1], Outcome::Accepted);  // a2, out of the middle of lane 0
  EXPECT_EQ(tracker.requeue(), 5u);
  tracker.add(make_batch("b", 2), reports.callback("b"));  // behind the resent ones
  EXPECT_EQ(send_all_lanes(tracker),
            (std::vector<std::vector<std::string>>{{"a0", "a4", "b0"}, {"a1", "a3", "a5", "b1"}}));
}

// ---- several events per delivery (Event Hubs batches) ----

TEST(delivery_tracker_test, one_delivery_of_several_events_is_settled_for_all_of_them) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 5), reports.callback("a"));
  ASSERT_EQ(tracker.waiting(0, 4)->entry_id, "a4");
  EXPECT_EQ(tracker.waiting(0, 5), nullptr);
  const DeliveryId expected = tracker.next_id();
  const DeliveryId id = tracker.sent(Clock::now(), 0, 3);
  EXPECT_EQ(id, expected);
  EXPECT_EQ(tracker.in_flight(), 3u);
  EXPECT_EQ(tracker.queued(), 2u);
  EXPECT_EQ(tracker.events_in(id), 3u);
  EXPECT_EQ(tracker.next()->entry_id, "a3");
  const DeliveryId single = tracker.sent(Clock::now());
  EXPECT_EQ(tracker.events_in(single), 1u);
  EXPECT_TRUE(tracker.settle(id, Outcome::Retry, "busy", milliseconds(10), Cause::ServerBusy));
  EXPECT_FALSE(tracker.settle(id, Outcome::Accepted)) << "answered once";
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 1u);
  std::set<std::size_t> indexes;
  for (const auto& completion : reports.calls["a"][0]) {
    EXPECT_EQ(completion.outcome, Outcome::Retry);
    EXPECT_EQ(completion.reason, "busy");
    EXPECT_EQ(completion.cause, Cause::ServerBusy);
    indexes.insert(completion.index);
  }
  EXPECT_EQ(indexes, (std::set<std::size_t>{0, 1, 2}));
  EXPECT_EQ(tracker.in_flight(), 1u);
}

TEST(delivery_tracker_test, room_counts_events_not_deliveries) {
  DeliveryTracker tracker(4, [] {});
  Reports reports;
  tracker.add(make_batch("a", 6), reports.callback("a"));
  EXPECT_EQ(tracker.room(), 4u);
  tracker.sent(Clock::now(), 0, 3);
  EXPECT_EQ(tracker.room(), 1u);
  tracker.sent(Clock::now(), 0, 1);
  EXPECT_EQ(tracker.room(), 0u);
  EXPECT_TRUE(tracker.full());
  EXPECT_EQ(tracker.next(), nullptr);
}

// A refused batch comes back in front, in order, each event marked to go alone; the answer to one of
// them then settles that one only.
TEST(delivery_tracker_test, a_split_batch_goes_again_one_event_per_delivery_in_order) {
  DeliveryTracker tracker(100, [] {});
  Reports reports;
  tracker.add(make_batch("a", 6), reports.callback("a"));
  const DeliveryId first = tracker.sent(Clock::now(), 0, 3);
  const DeliveryId second = tracker.sent(Clock::now(), 0, 2);
  EXPECT_TRUE(tracker.split(first));
  EXPECT_FALSE(tracker.split(first));
  EXPECT_EQ(tracker.in_flight(), 2u);
  EXPECT_EQ(tracker.queued(), 4u);
  EXPECT_TRUE(tracker.goes_alone(0, 0));
  EXPECT_TRUE(tracker.goes_alone(0, 2));
  EXPECT_FALSE(tracker.goes_alone(0, 3)) << "a5 was never in the refused batch";
  // The connection drops before anything else is answered: a3 and a4 go back behind a0..a2, not before.
  tracker.requeue();
  std::vector<std::string> order;
  for (std::size_t i = 0; const Event* event = tracker.waiting(0, i); ++i) order.push_back(event->entry_id);
  EXPECT_EQ(order, (std::vector<std::string>{"a0", "a1", "a2", "a3", "a4", "a5"}));
  EXPECT_TRUE(tracker.goes_alone(0, 1));
  EXPECT_FALSE(tracker.goes_alone(0, 3));
  EXPECT_EQ(tracker.events_in(second), 0u) << "the old id is gone";
  std::vector<std::string> sent;
  const auto ids = send_all(tracker, &sent);
  EXPECT_TRUE(tracker.settle(ids[1], Outcome::Reject, "bad event", {}, Cause::Rejected));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i != 1) {
      EXPECT_TRUE(tracker.settle(ids[i], Outcome::Accepted));
    }
  }
  tracker.flush();
  std::map<std::size_t, Outcome> outcomes;
  for (const auto& call : reports.calls["a"]) {
    for (const auto& completion : call) EXPECT_TRUE(outcomes.emplace(completion.index, completion.outcome).second);
  }
  ASSERT_EQ(outcomes.size(), 6u);
  EXPECT_EQ(outcomes[1], Outcome::Reject);
  EXPECT_EQ(std::count_if(outcomes.begin(), outcomes.end(), [](auto& o) { return o.second == Outcome::Reject; }), 1);
}

// Grouping by key puts each key's events next to each other, keeps their order per key, and orders the
// groups by their first event; without it nothing moves.
TEST(delivery_tracker_test, grouping_by_key_keeps_the_order_of_each_key) {
  auto order_of = [](DeliveryTracker& tracker) {
    std::string order;
    for (std::size_t i = 0; const Event* event = tracker.waiting(0, i); ++i) {
      order += event->partition_key + event->entry_id + " ";
    }
    return order;
  };
  Reports reports;
  DeliveryTracker grouped(100, [] {}, 1, true);
  grouped.add(keyed_batch({"B", "A", "B", "", "A", "B"}), reports.callback("x"));
  grouped.add(keyed_batch({"A", "B"}), reports.callback("y"));
  EXPECT_EQ(order_of(grouped), "Bk0 Bk2 Bk5 Ak1 Ak4 k3 Ak0 Bk1 ");
  // The order they wait in is the order they come back in.
  grouped.sent(Clock::now(), 0, 3);
  grouped.sent(Clock::now(), 0, 2);
  grouped.requeue();
  EXPECT_EQ(order_of(grouped), "Bk0 Bk2 Bk5 Ak1 Ak4 k3 Ak0 Bk1 ");

  DeliveryTracker plain(100, [] {}, 1, false);
  plain.add(keyed_batch({"B", "A", "B"}), reports.callback("z"));
  EXPECT_EQ(order_of(plain), "Bk0 Ak1 Bk2 ");
}

}  // namespace
}  // namespace connector
