// plan_entries: the decision part of Pipeline::dispatch, without Redis or a sink.
#include <gtest/gtest.h>

#include "core/pipeline.hpp"

namespace connector {
namespace {

StreamEntry entry(std::string id, StreamFields fields, unsigned deliveries = 1) {
  StreamEntry result;
  result.id = std::move(id);
  result.fields = std::move(fields);
  result.deliveries = deliveries;
  return result;
}

TEST(pipeline_plan_test, healthy_entries_are_sent_in_order) {
  const Encoder encoder({"s", std::nullopt, std::nullopt});
  Batch events;
  const auto plans =
      plan_entries({entry("1-0", {{"a", "1"}}), entry("2-0", {{"b", "2"}})}, encoder, 1 << 20, 10, events);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].action, EntryAction::Send);
  EXPECT_EQ(plans[1].action, EntryAction::Send);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].entry_id, "1-0");
  EXPECT_EQ(events[1].entry_id, "2-0");
}

TEST(pipeline_plan_test, trimmed_entries_are_acked_and_never_encoded) {
  const Encoder encoder({"s", std::nullopt, std::nullopt});
  StreamEntry trimmed = entry("1-0", {});
  trimmed.deleted = true;
  Batch events;
  const auto plans = plan_entries({trimmed}, encoder, 1 << 20, 10, events);
  EXPECT_EQ(plans[0].action, EntryAction::AckTrimmed);
  EXPECT_TRUE(events.empty());
}

TEST(pipeline_plan_test, max_delivery_attempts_is_the_last_allowed_delivery) {
  const Encoder encoder({"s", std::nullopt, std::nullopt});
  Batch events;
  const auto plans = plan_entries({entry("1-0", {{"a", "1"}}, 3), entry("2-0", {{"a", "1"}}, 4)}, encoder,
                                  1 << 20, 3, events);
  EXPECT_EQ(plans[0].action, EntryAction::Send);
  EXPECT_EQ(plans[1].action, EntryAction::DeadLetter);
  EXPECT_EQ(plans[1].reason, "delivered 4 times, more than MAX_DELIVERY_ATTEMPTS (3)");
  EXPECT_EQ(plans[1].cause, Cause::MaxDeliveries);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].entry_id, "1-0");
}

TEST(pipeline_plan_test, unencodable_and_oversized_entries_are_dead_lettered_with_the_reason) {
  const Encoder encoder({"s", std::string("body"), std::nullopt});
  Batch events;
  const auto plans =
      plan_entries({entry("1-0", {{"other", "x"}}), entry("2-0", {{"body", std::string(100, 'x')}}),
                    entry("3-0", {{"body", "ok"}})},
                   encoder, 50, 10, events);
  EXPECT_EQ(plans[0].action, EntryAction::DeadLetter);
  EXPECT_NE(plans[0].reason.find("body"), std::string::npos) << plans[0].reason;
  EXPECT_EQ(plans[0].cause, Cause::Unencodable);
  EXPECT_EQ(plans[1].action, EntryAction::DeadLetter);
  EXPECT_EQ(plans[1].reason, "event body of 100 bytes exceeds the output's maximum of 50 bytes");
  EXPECT_EQ(plans[1].cause, Cause::TooLarge);
  EXPECT_EQ(plans[2].action, EntryAction::Send);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].entry_id, "3-0");
}

/// Every field of an event, to compare one encoded into a spent event with one encoded afresh.
std::string describe(const Event& event) {
  std::string text = event.entry_id + "|" + event.body + "|" + std::string(event.content_type) + "|" +
                     (event.body_is_json ? "json" : "raw") + "|" + event.partition_key;
  for (const auto& [name, value] : event.properties) text += "|" + name + "=" + value;
  return text;
}

TEST(pipeline_plan_test, a_spent_batch_is_encoded_into_and_reads_as_a_fresh_one) {
  const Encoder encoder({"s", std::string("body"), std::string("pk")});
  // A spent batch: more events than this round has entries, with other bodies, keys and properties.
  Batch spent;
  plan_entries({entry("7-0", {{"body", std::string(300, 'a')}, {"pk", "p1"}, {"x", "1"}, {"y", "2"}}),
                entry("7-1", {{"body", "b"}, {"z", "3"}}), entry("7-2", {{"body", "c"}}),
                entry("7-3", {{"body", "d"}})},
               encoder, 1 << 20, 10, spent);
  ASSERT_EQ(spent.size(), 4u);
  const char* first_body = spent[0].body.data();

  const std::vector<StreamEntry> entries = {entry("8-0", {{"body", "short"}}),
                                            entry("8-1", {{"body", std::string(100, 'x')}}),  // too large
                                            entry("8-2", {{"body", "ok"}, {"pk", "p2"}, {"w", "4"}})};
  Batch events = std::move(spent);
  const auto plans = plan_entries(entries, encoder, 50, 10, events);
  EXPECT_EQ(plans[1].action, EntryAction::DeadLetter);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].body.data(), first_body);  // the spent event's buffer, not a new one
  EXPECT_EQ(describe(events[0]), describe(encoder.encode(entries[0])));
  EXPECT_EQ(describe(events[1]), describe(encoder.encode(entries[2])));
  EXPECT_EQ(events[0].properties.size(), 2u);  // redis-stream, redis-id: none left from 7-0
}

}  // namespace
}  // namespace connector
