#include <gtest/gtest.h>

#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>
#include <proton/value.hpp>

#include "eventhubs/message_builder.hpp"

namespace connector {
namespace {

Event sample_event() {
  Event event;
  event.entry_id = "1732700000000-7";
  event.body = std::string("{\"a\":1}\x00\xFF", 9);
  event.content_type = "application/json";
  event.body_is_json = true;
  event.properties = {{"redis-stream", "orders"}, {"redis-id", "1732700000000-7"}};
  event.partition_key = "customer-42";
  return event;
}

TEST(eventhubs_message_builder_test, short_partition_keys_are_kept) {
  EXPECT_EQ(partition_key_annotation("customer-42"), "customer-42");
  EXPECT_EQ(partition_key_annotation(std::string(128, 'k')), std::string(128, 'k'));
}

TEST(eventhubs_message_builder_test, long_partition_keys_become_their_sha256_hex) {
  // sha256 of 129 'k' characters, computed with: printf 'k%.0s' {1..129} | sha256sum
  EXPECT_EQ(partition_key_annotation(std::string(129, 'k')),
            "9094034fb2d0ce2e407c9b260f2806ab2efb352e200722fd6296d9cf1cf7e6f5");
}

TEST(eventhubs_message_builder_test, non_utf8_partition_keys_become_their_sha256_hex) {
  // printf 'caf\351 \377\000!' | sha256sum
  EXPECT_EQ(partition_key_annotation(std::string("caf\xE9 \xFF\x00!", 8)),
            "4b5bf712b7b3aa7ae03231475abed1b554b1f5d7a5e5d4c35edd635c9ad652c0");
  EXPECT_EQ(partition_key_annotation("caf\xC3\xA9"), "caf\xC3\xA9");
}

TEST(eventhubs_message_builder_test, non_utf8_property_values_go_out_as_binary) {
  Event event = sample_event();
  const std::string raw("\xFF\xFE\x00x", 4);
  event.properties.emplace_back("raw", raw);
  proton::message message;
  build_message(event, true, message);
  proton::message decoded;
  decoded.decode(message.encode());
  ASSERT_EQ(decoded.properties().get("raw").type(), proton::BINARY);
  EXPECT_EQ(std::string(proton::get<proton::binary>(decoded.properties().get("raw"))), raw);
  EXPECT_EQ(decoded.properties().get("redis-stream").type(), proton::STRING);
}

TEST(eventhubs_message_builder_test, builds_a_data_section_with_properties_annotation_and_id) {
  proton::message message;
  build_message(sample_event(), true, message);
  // Decode what goes on the wire, so the test sees what the service sees.
  proton::message decoded;
  decoded.decode(message.encode());
  EXPECT_TRUE(decoded.inferred());  // a data section, not an AmqpValue
  ASSERT_EQ(decoded.body().type(), proton::BINARY);
  EXPECT_EQ(std::string(proton::get<proton::binary>(decoded.body())), std::string("{\"a\":1}\x00\xFF", 9));
  EXPECT_EQ(decoded.content_type(), "application/json");
  EXPECT_EQ(proton::get<std::string>(decoded.id()), "1732700000000-7");
  EXPECT_EQ(decoded.properties().size(), 2u);
  EXPECT_EQ(proton::get<std::string>(decoded.properties().get("redis-stream")), "orders");
  EXPECT_EQ(proton::get<std::string>(decoded.properties().get("redis-id")), "1732700000000-7");
  const auto key = decoded.message_annotations().get(proton::annotation_key("x-opt-partition-key"));
  EXPECT_EQ(proton::get<std::string>(key), "customer-42");
}

TEST(eventhubs_message_builder_test, no_annotation_for_a_partition_target_or_an_empty_key) {
  proton::message message;
  build_message(sample_event(), false, message);
  EXPECT_TRUE(message.message_annotations().empty());
  Event event = sample_event();
  event.partition_key.clear();
  event.content_type.clear();
  build_message(event, true, message);
  EXPECT_TRUE(message.message_annotations().empty());
  EXPECT_EQ(message.content_type(), "");
}

TEST(eventhubs_message_builder_test, reuse_clears_the_previous_event) {
  proton::message message;
  build_message(sample_event(), true, message);
  Event bare;
  bare.entry_id = "1-1";
  bare.body = "x";
  build_message(bare, true, message);
  EXPECT_TRUE(message.properties().empty());
  EXPECT_TRUE(message.message_annotations().empty());
  EXPECT_EQ(proton::get<std::string>(message.id()), "1-1");
}

TEST(eventhubs_message_builder_test, upper_bound_is_never_below_the_encoded_size) {
  proton::message message;
  for (std::size_t body : {0u, 1u, 200u, 70000u}) {
    for (std::size_t props : {0u, 1u, 30u}) {
      Event event = sample_event();
      event.body.assign(body, 'b');
      event.partition_key = std::string(props * 7, 'p');
      for (std::size_t i = 0; i < props; ++i) event.properties.emplace_back("name-" + std::to_string(i), "v");
      build_message(event, true, message);
      const std::size_t exact = encoded_size(message);
      EXPECT_GE(encoded_size_upper_bound(event), exact) << body << " " << props;
      EXPECT_LE(encoded_size_upper_bound(event), exact + 1024) << body << " " << props;  // still tight
      EXPECT_GE(exact, body);
    }
  }
}

}  // namespace
}  // namespace connector
