// DeliveryTracker: the Event Hubs sink's at-least-once bookkeeping, without Proton or a network.
#include "eventhubs/delivery_tracker.hpp"

#include <gtest/gtest.h>

#include <map>
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
  EXPECT_TRUE(tracker.settle(ids[1], Outcome::Retry, "busy", milliseconds(4000)));
  EXPECT_FALSE(tracker.settle(ids[1], Outcome::Accepted));  // answered already
  EXPECT_EQ(flush_requests, 1);                             // one per burst, not per completion
  EXPECT_TRUE(reports.calls.empty());                       // nothing before flush()
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 1u);
  ASSERT_EQ(reports.calls["a"][0].size(), 2u);
  EXPECT_EQ(reports.calls["a"][0][0].index, 0u);
  EXPECT_EQ(reports.calls["a"][0][1].outcome, Outcome::Retry);
  EXPECT_EQ(reports.calls["a"][0][1].retry_after, milliseconds(4000));
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
  tracker.complete_next(Outcome::Reject, "too large");
  EXPECT_EQ(tracker.next()->entry_id, "a1");
  tracker.flush();
  ASSERT_EQ(reports.calls["a"].size(), 1u);
  EXPECT_EQ(reports.calls["a"][0][0].outcome, Outcome::Reject);
  EXPECT_EQ(reports.calls["a"][0][0].reason, "too large");
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

}  // namespace
}  // namespace connector
