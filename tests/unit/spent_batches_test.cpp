// SpentBatches: the batches an output hands back for the next ones to be encoded into.
#include "sinks/spent_batches.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "sinks/blackhole_sink.hpp"

namespace connector {
namespace {

Batch batch_of(std::size_t events, std::size_t body_bytes) {
  Batch batch(events);
  for (std::size_t i = 0; i < events; ++i) {
    batch[i].entry_id = "1765000000000-" + std::to_string(1000 + i);  // longer than a string holds inline
    batch[i].body.assign(body_bytes, 'x');
  }
  return batch;
}

TEST(spent_batches_test, a_batch_given_back_comes_out_with_its_events_memory) {
  SpentBatches spent;
  Batch batch = batch_of(3, 500);
  const char* body = batch[1].body.data();
  spent.give(std::move(batch));
  EXPECT_EQ(spent.batches(), 1u);
  EXPECT_GE(spent.bytes(), 3 * 500u);

  Batch again = spent.take();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[1].body.data(), body);  // the very same buffer: nothing was freed and allocated again
  again[1].body.assign(400, 'y');
  EXPECT_EQ(again[1].body.data(), body);
  EXPECT_EQ(spent.batches(), 0u);
  EXPECT_EQ(spent.bytes(), 0u);
  EXPECT_TRUE(spent.take().empty());
}

TEST(spent_batches_test, keeps_no_more_than_its_count_and_its_bytes) {
  SpentBatches two(2, 1 << 20);
  for (int i = 0; i < 3; ++i) two.give(batch_of(2, 100));
  EXPECT_EQ(two.batches(), 2u);

  // A batch of one huge entry (or many big ones) is not held on to: it is freed as before.
  SpentBatches small(4, 10000);
  small.give(batch_of(1, 20000));
  EXPECT_EQ(small.batches(), 0u);
  EXPECT_EQ(small.bytes(), 0u);
  small.give(batch_of(2, 1000));
  small.give(batch_of(2, 1000));
  small.give(batch_of(10, 1000));  // would pass the budget
  EXPECT_EQ(small.batches(), 2u);
  EXPECT_LE(small.bytes(), 10000u);

  small.give({});  // nothing to keep
  EXPECT_EQ(small.batches(), 2u);
}

TEST(spent_batches_test, counts_only_memory_outside_the_strings_themselves) {
  Batch batch(2);
  batch[0].entry_id = "1-0";
  batch[0].body = "{}";
  batch[0].properties.emplace_back("redis-id", "1-0");
  const std::size_t short_strings = SpentBatches::bytes_of(batch);
  EXPECT_EQ(short_strings, batch.capacity() * sizeof(Event));
  batch[1].body.assign(1000, 'x');
  EXPECT_GE(SpentBatches::bytes_of(batch), short_strings + 1000);
}

TEST(spent_batches_test, counts_a_property_list_that_outgrew_its_inline_slots) {
  Batch batch(1);
  for (int i = 0; i < 2; ++i) batch[0].properties.emplace_back("k", "v");
  const std::size_t inline_only = SpentBatches::bytes_of(batch);
  EXPECT_EQ(inline_only, batch.capacity() * sizeof(Event));
  for (int i = 0; i < 30; ++i) batch[0].properties.emplace_back("k", "v");
  EXPECT_GE(SpentBatches::bytes_of(batch),
            inline_only + 32 * sizeof(decltype(batch[0].properties)::value_type));
}

TEST(spent_batches_test, giving_and_taking_from_several_threads_loses_nothing) {
  SpentBatches spent(1000, std::size_t{1} << 30);
  std::vector<std::thread> givers;
  for (int t = 0; t < 4; ++t) {
    givers.emplace_back([&] {
      for (int i = 0; i < 100; ++i) spent.give(batch_of(1, 100));
    });
  }
  std::size_t taken = 0;
  for (auto& giver : givers) giver.join();
  while (!spent.take().empty()) ++taken;
  EXPECT_EQ(taken, 400u);
}

TEST(spent_batches_test, the_blackhole_output_hands_back_what_it_confirmed) {
  BlackholeSink sink;
  EXPECT_TRUE(sink.spare_batch().empty());
  std::size_t confirmed = 0;
  sink.send(batch_of(5, 50), [&](std::vector<Completion> completions) { confirmed += completions.size(); });
  EXPECT_EQ(confirmed, 5u);
  EXPECT_EQ(sink.spare_batch().size(), 5u);
  EXPECT_TRUE(sink.spare_batch().empty());
}

}  // namespace
}  // namespace connector
