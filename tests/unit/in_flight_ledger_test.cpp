// InFlightLedger: the pipeline's at-least-once bookkeeping, without threads, Redis or a sink, on a fake
// clock.
#include "core/in_flight_ledger.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "observability/metrics.hpp"

namespace connector {
namespace {

using std::chrono::milliseconds;
using Clock = InFlightLedger::Clock;
using EntryRef = InFlightLedger::EntryRef;

const Clock::time_point t0 = Clock::time_point() + std::chrono::hours(1);

std::vector<StreamEntry> entries(std::size_t count, unsigned deliveries = 1) {
  std::vector<StreamEntry> result(count);
  for (std::size_t i = 0; i < count; ++i) {
    result[i].id = "1-" + std::to_string(i);
    result[i].deliveries = deliveries;
  }
  return result;
}

std::vector<EntryPlan> send_all(std::size_t count) { return std::vector<EntryPlan>(count); }

Completion outcome(std::size_t index, Outcome kind, std::string reason = {}, milliseconds retry_after = {}) {
  Completion completion;
  completion.index = index;
  completion.outcome = kind;
  completion.reason = std::move(reason);
  completion.retry_after = retry_after;
  return completion;
}

// The back-off doubles from 100 ms and its jitter is fixed at the middle (a factor of exactly 1):
// predictable waits.
class in_flight_ledger_test : public ::testing::Test {
 protected:
  Metrics metrics;
  bool output_ready = true;
  InFlightLedger ledger{3, BackoffPolicy{milliseconds(100), std::chrono::seconds(10)}, [] { return 0.5; },
                        metrics};

  void apply(std::uint64_t batch, std::vector<std::size_t> indices, std::vector<Completion> completions,
             Clock::time_point now = t0) {
    ledger.apply(
        batch, indices, completions, [this] { return output_ready; }, now);
  }
};

TEST_F(in_flight_ledger_test, a_new_batch_sends_its_entries_and_queues_trimmed_and_dead_letter_ones) {
  std::vector<EntryPlan> plans(3);
  plans[1].action = EntryAction::AckTrimmed;
  plans[2] = {EntryAction::DeadLetter, "too large"};
  const auto batch = ledger.add(entries(3), plans, t0);
  EXPECT_EQ(ledger.outstanding_events(), 1u);
  EXPECT_EQ(metrics.events_sent.value(), 1u);
  EXPECT_EQ(metrics.entries_deleted_acked.value(), 1u);
  const auto work = ledger.take_due_work(t0);
  EXPECT_EQ(work.acks, (std::vector<EntryRef>{{batch, 1}}));
  EXPECT_EQ(work.dead_letters, (std::vector<EntryRef>{{batch, 2}}));
  EXPECT_EQ(ledger.dead_letter({batch, 2}).reason, "too large");
  EXPECT_FALSE(ledger.has_due_work()) << "handed out once";
}

TEST_F(in_flight_ledger_test, an_accepted_entry_is_acked_and_its_batch_ends_with_its_last_entry) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(0, Outcome::Accepted)});
  EXPECT_EQ(metrics.events_confirmed.value(), 1u);
  auto work = ledger.take_due_work(t0);
  ASSERT_EQ(work.acks, (std::vector<EntryRef>{{batch, 0}}));
  EXPECT_EQ(ledger.acked(work.acks, t0), 0u) << "one entry is still with the output";
  EXPECT_EQ(ledger.batches(), 1u);
  EXPECT_EQ(ledger.in_flight_ids().count("1-0"), 0u);
  EXPECT_EQ(ledger.in_flight_ids().count("1-1"), 1u);
  apply(batch, {0, 1}, {outcome(1, Outcome::Accepted)});
  work = ledger.take_due_work(t0);
  EXPECT_EQ(ledger.acked(work.acks, t0 + milliseconds(5)), 1u);
  EXPECT_EQ(ledger.batches(), 0u);
  EXPECT_EQ(metrics.entries_acked.value(), 2u);
  EXPECT_EQ(metrics.batch_duration.snapshot().cumulative.back(), 1u);
  EXPECT_TRUE(ledger.drained());
}

TEST_F(in_flight_ledger_test, an_ended_batch_hands_its_entries_over_once_for_the_reader_to_free) {
  const auto first = ledger.add(entries(2), send_all(2), t0);
  const auto second = ledger.add(entries(1), send_all(1), t0);
  apply(first, {0, 1}, {outcome(0, Outcome::Accepted)});
  EXPECT_EQ(ledger.acked(ledger.take_due_work(t0).acks, t0), 0u);
  EXPECT_TRUE(ledger.take_ended_entries().empty()) << "a batch still in flight keeps its entries";
  apply(first, {0, 1}, {outcome(1, Outcome::Accepted)});
  apply(second, {0}, {outcome(0, Outcome::Accepted)});
  EXPECT_EQ(ledger.acked(ledger.take_due_work(t0).acks, t0), 2u);
  const auto ended = ledger.take_ended_entries();
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(ended[0].size() + ended[1].size(), 3u);
  EXPECT_EQ(ended[0].front().id, "1-0");
  EXPECT_TRUE(ledger.take_ended_entries().empty()) << "handed over once";
}

TEST_F(in_flight_ledger_test, nothing_is_due_for_an_ack_before_the_output_confirmed_it) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(1, Outcome::Retry, "busy")});
  EXPECT_FALSE(ledger.has_due_work());
  EXPECT_TRUE(ledger.take_due_work(t0 + std::chrono::hours(1)).empty());
  EXPECT_FALSE(ledger.drained()) << "one event is still with the output";
}

TEST_F(in_flight_ledger_test, a_rejected_entry_is_due_for_the_dead_letter_stream_with_the_reason) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(0, Outcome::Reject), outcome(1, Outcome::Reject, "policy")});
  const auto work = ledger.take_due_work(t0);
  ASSERT_EQ(work.dead_letters.size(), 2u);
  EXPECT_EQ(ledger.dead_letter(work.dead_letters[0]).reason, "rejected by the output");
  EXPECT_EQ(ledger.dead_letter(work.dead_letters[1]).reason, "policy");
  EXPECT_EQ(ledger.dead_letters_written(work.dead_letters, {"", ""}, t0), 1u);
  EXPECT_EQ(metrics.dead_lettered_total(), 2u);
  EXPECT_EQ(ledger.batches(), 0u);
}

TEST_F(in_flight_ledger_test, each_dead_letter_and_retry_is_counted_under_its_cause) {
  std::vector<EntryPlan> plans(3);
  plans[0] = {EntryAction::DeadLetter, "event body of 2 MB exceeds the output's maximum", Cause::TooLarge};
  const auto batch = ledger.add(entries(3), plans, t0);
  // Events 0 and 1 are entries 1 and 2 (entry 0 never went out).
  Completion busy = outcome(0, Outcome::Retry, "server busy");
  busy.cause = Cause::ServerBusy;
  Completion size = outcome(1, Outcome::Reject, "amqp:link:message-size-exceeded");
  size.cause = Cause::TooLarge;
  Completion decode = outcome(0, Outcome::Reject, "amqp:decode-error");
  decode.cause = Cause::Rejected;
  apply(batch, {1, 2}, {busy, size});
  EXPECT_EQ(metrics.retried(Cause::ServerBusy).value(), 1u);
  const auto first = ledger.take_due_work(t0);
  EXPECT_EQ(ledger.dead_letter(first.dead_letters[0]).cause, Cause::TooLarge);
  ledger.dead_letters_written(first.dead_letters, {"", ""}, t0);
  ASSERT_EQ(ledger.take_due_retries(t0 + milliseconds(100)).size(), 1u);  // entry 1 is sent again
  apply(batch, {1}, {decode}, t0 + milliseconds(100));
  ledger.dead_letters_written(ledger.take_due_work(t0 + milliseconds(100)).dead_letters, {""},
                              t0 + milliseconds(100));
  EXPECT_EQ(metrics.dead_lettered(Cause::TooLarge).value(), 2u);
  EXPECT_EQ(metrics.dead_lettered(Cause::Rejected).value(), 1u);
  EXPECT_EQ(metrics.dead_lettered(Cause::MaxDeliveries).value(), 0u);
}

TEST_F(in_flight_ledger_test, a_retry_waits_for_its_back_off_and_is_sent_again) {
  const auto batch = ledger.add(entries(3), send_all(3), t0);
  apply(batch, {0, 1, 2}, {outcome(0, Outcome::Retry, "busy"), outcome(2, Outcome::Retry, "busy")});
  EXPECT_EQ(metrics.retried_total(), 2u);
  EXPECT_EQ(ledger.outstanding_events(), 1u);
  ASSERT_EQ(ledger.next_retry(), t0 + milliseconds(100));
  EXPECT_TRUE(ledger.take_due_retries(t0 + milliseconds(99)).empty());
  const auto due = ledger.take_due_retries(t0 + milliseconds(100));
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].batch_id, batch);
  EXPECT_EQ(due[0].indices, (std::vector<std::size_t>{0, 2}));
  EXPECT_EQ(ledger.outstanding_events(), 3u);
  EXPECT_EQ(metrics.events_sent.value(), 5u);
  EXPECT_FALSE(ledger.next_retry());
  // The resend's event 1 is entry 2: its second retry waits twice as long.
  apply(batch, {0, 2}, {outcome(1, Outcome::Retry, "busy")}, t0 + milliseconds(150));
  EXPECT_EQ(ledger.next_retry(), t0 + milliseconds(350));
}

TEST_F(in_flight_ledger_test, the_output_asks_for_a_longer_wait_than_the_back_off) {
  const auto batch = ledger.add(entries(1), send_all(1), t0);
  apply(batch, {0}, {outcome(0, Outcome::Retry, "throttled", milliseconds(4000))});
  EXPECT_EQ(ledger.next_retry(), t0 + milliseconds(4000));
}

TEST_F(in_flight_ledger_test,
       retries_count_only_while_the_output_accepts_others_and_leave_the_entry_unchanged) {
  const auto batch = ledger.add(entries(4), send_all(4), t0);
  // An outage: nothing is accepted, so the retry does not count.
  apply(batch, {0, 1, 2, 3}, {outcome(0, Outcome::Retry, "down")});
  EXPECT_TRUE(ledger.take_delivery_counts().empty());
  // Others are accepted since: the next failure of entry 0 counts.
  ledger.take_due_retries(t0 + std::chrono::hours(1));
  apply(batch, {0, 1, 2, 3}, {outcome(1, Outcome::Accepted), outcome(0, Outcome::Retry, "bad")});
  EXPECT_EQ(ledger.take_delivery_counts(), (std::vector<std::pair<std::string, unsigned>>{{"1-0", 2}}));
  EXPECT_EQ(ledger.dead_letter({batch, 0}).deliveries, 2u);
  EXPECT_EQ(ledger.entry({batch, 0}).deliveries, 1u)
      << "the entry read from Redis changed after it was added";
  // Not ready: no attempt counts even though others were accepted.
  output_ready = false;
  ledger.take_due_retries(t0 + std::chrono::hours(2));
  apply(batch, {0, 2, 3}, {outcome(1, Outcome::Accepted), outcome(0, Outcome::Retry, "bad")});
  EXPECT_TRUE(ledger.take_delivery_counts().empty());
}

TEST_F(in_flight_ledger_test, a_counted_retry_at_max_delivery_attempts_is_dead_lettered) {
  const auto batch = ledger.add(entries(2, /*deliveries=*/3), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(1, Outcome::Accepted), outcome(0, Outcome::Retry, "bad")});
  const auto work = ledger.take_due_work(t0);
  ASSERT_EQ(work.dead_letters, (std::vector<EntryRef>{{batch, 0}}));
  EXPECT_EQ(ledger.dead_letter({batch, 0}).reason,
            "failed 3 times while the output accepted other events, MAX_DELIVERY_ATTEMPTS is 3; last: bad");
  EXPECT_EQ(metrics.retried_total(), 0u);
}

TEST_F(in_flight_ledger_test, unknown_and_repeated_outcomes_are_ignored) {
  const auto batch = ledger.add(entries(1), send_all(1), t0);
  apply(batch + 1, {0}, {outcome(0, Outcome::Accepted)});
  apply(batch, {0}, {outcome(5, Outcome::Accepted)});
  EXPECT_EQ(ledger.outstanding_events(), 1u);
  apply(batch, {0}, {outcome(0, Outcome::Accepted)});
  apply(batch, {0}, {outcome(0, Outcome::Reject)});
  EXPECT_EQ(ledger.outstanding_events(), 0u);
  const auto work = ledger.take_due_work(t0);
  EXPECT_EQ(work.acks.size(), 1u);
  EXPECT_TRUE(work.dead_letters.empty());
}

TEST_F(in_flight_ledger_test, work_given_back_is_due_again_and_an_entry_is_acked_once) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(0, Outcome::Accepted), outcome(1, Outcome::Accepted)});
  auto work = ledger.take_due_work(t0);
  const auto counts = ledger.give_back(std::move(work));
  EXPECT_EQ(counts.acks, 2u);
  work = ledger.take_due_work(t0);
  ASSERT_EQ(work.acks.size(), 2u);
  EXPECT_EQ(ledger.acked({work.acks[0], work.acks[0]}, t0), 0u);
  EXPECT_EQ(ledger.unresolved(), 1u);
  EXPECT_EQ(ledger.acked({work.acks[1]}, t0), 1u);
}

TEST_F(in_flight_ledger_test, a_refused_dead_letter_write_waits_for_its_back_off_while_acks_go_on) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(0, Outcome::Reject, "policy")});
  auto work = ledger.take_due_work(t0);
  EXPECT_EQ(ledger.dead_letters_written(work.dead_letters, {"WRONGTYPE"}, t0), 0u);
  EXPECT_EQ(ledger.next_dead_letter_retry(), t0 + milliseconds(100));
  apply(batch, {0, 1}, {outcome(1, Outcome::Accepted)});
  work = ledger.take_due_work(t0 + milliseconds(99));
  EXPECT_EQ(work.acks.size(), 1u);
  EXPECT_TRUE(work.dead_letters.empty());
  ledger.acked(work.acks, t0);
  // Refused again: the second wait is longer.
  work = ledger.take_due_work(t0 + milliseconds(100));
  ASSERT_EQ(work.dead_letters, (std::vector<EntryRef>{{batch, 0}}));
  ledger.dead_letters_written(work.dead_letters, {"WRONGTYPE"}, t0 + milliseconds(100));
  EXPECT_EQ(ledger.next_dead_letter_retry(), t0 + milliseconds(300));
  work = ledger.take_due_work(t0 + milliseconds(300));
  EXPECT_EQ(ledger.dead_letters_written(work.dead_letters, {""}, t0 + milliseconds(300)), 1u);
  EXPECT_FALSE(ledger.next_dead_letter_retry());
  EXPECT_TRUE(ledger.drained());
}

TEST_F(in_flight_ledger_test, entries_already_in_flight_are_dropped_from_a_re_read) {
  const auto batch = ledger.add(entries(2), send_all(2), t0);
  apply(batch, {0, 1}, {outcome(0, Outcome::Accepted)});
  ledger.acked(ledger.take_due_work(t0).acks, t0);
  auto again = entries(3);
  ledger.drop_in_flight(again);
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].id, "1-0");
  EXPECT_EQ(again[1].id, "1-2");
}

}  // namespace
}  // namespace connector
