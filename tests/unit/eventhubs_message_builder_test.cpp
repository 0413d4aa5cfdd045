#include <gtest/gtest.h>

#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>
#include <proton/message.hpp>
#include <proton/value.hpp>
#include <proton/codec.h>
#include <string>
#include <vector>

#include "eventhubs/amqp_codes.hpp"
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

// What the service sees: the bytes decoded by Proton, an independent AMQP implementation.
proton::message decoded(const Event& event, bool with_partition_key = true) {
  std::string bytes;
  encode_event(event, with_partition_key, bytes);
  proton::message message;
  message.decode(std::vector<char>(bytes.begin(), bytes.end()));
  return message;
}

TEST(eventhubs_message_builder_test, non_utf8_property_values_go_out_as_binary) {
  Event event = sample_event();
  const std::string raw("\xFF\xFE\x00x", 4);
  event.properties.emplace_back("raw", raw);
  const proton::message message = decoded(event);
  ASSERT_EQ(message.properties().get("raw").type(), proton::BINARY);
  EXPECT_EQ(std::string(proton::get<proton::binary>(message.properties().get("raw"))), raw);
  EXPECT_EQ(message.properties().get("redis-stream").type(), proton::STRING);
}

TEST(eventhubs_message_builder_test, builds_a_data_section_with_properties_annotation_and_id) {
  const proton::message message = decoded(sample_event());
  EXPECT_TRUE(message.inferred());  // a data section, not an AmqpValue
  ASSERT_EQ(message.body().type(), proton::BINARY);
  EXPECT_EQ(std::string(proton::get<proton::binary>(message.body())), std::string("{\"a\":1}\x00\xFF", 9));
  EXPECT_EQ(message.content_type(), "application/json");
  EXPECT_EQ(proton::get<std::string>(message.id()), "1732700000000-7");
  EXPECT_EQ(message.properties().size(), 2u);
  EXPECT_EQ(proton::get<std::string>(message.properties().get("redis-stream")), "orders");
  EXPECT_EQ(proton::get<std::string>(message.properties().get("redis-id")), "1732700000000-7");
  const auto key = message.message_annotations().get(proton::annotation_key("x-opt-partition-key"));
  EXPECT_EQ(proton::get<std::string>(key), "customer-42");
}

TEST(eventhubs_message_builder_test, no_annotation_for_a_partition_target_or_an_empty_key) {
  EXPECT_TRUE(decoded(sample_event(), false).message_annotations().empty());
  Event event = sample_event();
  event.partition_key.clear();
  event.content_type = {};
  const proton::message message = decoded(event);
  EXPECT_TRUE(message.message_annotations().empty());
  EXPECT_EQ(message.content_type(), "");
  EXPECT_EQ(proton::get<std::string>(message.id()), "1732700000000-7");
}

TEST(eventhubs_message_builder_test, long_keys_are_sent_as_their_hash) {
  Event event = sample_event();
  event.partition_key = std::string(129, 'k');
  const auto key = decoded(event).message_annotations().get(proton::annotation_key("x-opt-partition-key"));
  EXPECT_EQ(proton::get<std::string>(key), "9094034fb2d0ce2e407c9b260f2806ab2efb352e200722fd6296d9cf1cf7e6f5");
}

TEST(eventhubs_message_builder_test, a_repeated_property_name_keeps_its_last_value) {
  Event event = sample_event();
  event.properties.emplace_back("redis-stream", "last");
  const proton::message message = decoded(event);
  EXPECT_EQ(message.properties().size(), 2u);
  EXPECT_EQ(proton::get<std::string>(message.properties().get("redis-stream")), "last");
}

TEST(eventhubs_message_builder_test, reuse_replaces_the_previous_event) {
  std::string bytes;
  encode_event(sample_event(), true, bytes);
  Event bare;
  bare.entry_id = "1-1";
  bare.body = "x";
  encode_event(bare, true, bytes);
  proton::message message;
  message.decode(std::vector<char>(bytes.begin(), bytes.end()));
  EXPECT_TRUE(message.properties().empty());
  EXPECT_TRUE(message.message_annotations().empty());
  EXPECT_EQ(proton::get<std::string>(message.id()), "1-1");
  EXPECT_EQ(std::string(proton::get<proton::binary>(message.body())), "x");
}

TEST(eventhubs_message_builder_test, the_head_and_the_body_make_the_whole_message) {
  for (const std::size_t body_size : {std::size_t{0}, std::size_t{9}, std::size_t{255}, std::size_t{256}}) {
    Event event = sample_event();
    event.body.assign(body_size, 'b');
    std::string whole, head;
    encode_event(event, true, whole);
    encode_event_head(event, true, head);
    EXPECT_EQ(head + event.body, whole) << body_size;
  }
}

TEST(eventhubs_message_builder_test, large_items_take_the_four_byte_length_forms) {
  Event event = sample_event();
  event.body.assign(70000, 'b');
  event.entry_id = std::string(300, '9');
  static const std::string long_type(300, 'c');
  event.content_type = long_type;
  event.partition_key = std::string(100, 'p') + "\xC3\xA9";  // 102 bytes, still UTF-8: sent as is
  event.properties.emplace_back(std::string(300, 'n'), std::string(300, 'v'));
  event.properties.emplace_back("bin", std::string(300, '\xFF'));
  for (int i = 0; i < 100; ++i) event.properties.emplace_back("name-" + std::to_string(i), "v");
  const proton::message message = decoded(event);
  EXPECT_EQ(std::string(proton::get<proton::binary>(message.body())), event.body);
  EXPECT_EQ(proton::get<std::string>(message.id()), event.entry_id);
  EXPECT_EQ(message.content_type(), event.content_type);
  EXPECT_EQ(message.properties().size(), 104u);
  EXPECT_EQ(proton::get<std::string>(message.properties().get(std::string(300, 'n'))), std::string(300, 'v'));
  EXPECT_EQ(std::string(proton::get<proton::binary>(message.properties().get("bin"))), std::string(300, '\xFF'));
  const auto key = message.message_annotations().get(proton::annotation_key("x-opt-partition-key"));
  EXPECT_EQ(proton::get<std::string>(key), event.partition_key);
}

// The constructor byte that follows a section's descriptor (0x00 0x53 descriptor) in `bytes`.
unsigned char code_after_section(const std::string& bytes, amqp::Section descriptor) {
  const std::string marker{static_cast<char>(amqp::kDescribed), static_cast<char>(amqp::kSmallUlong),
                           static_cast<char>(descriptor)};
  const std::size_t at = bytes.find(marker);
  return at == std::string::npos ? 0 : static_cast<unsigned char>(bytes[at + marker.size()]);
}

TEST(eventhubs_message_builder_test, small_sections_take_the_one_byte_forms) {
  std::string bytes;
  encode_event(sample_event(), true, bytes);
  EXPECT_EQ(code_after_section(bytes, amqp::kMessageAnnotations), amqp::kMap8);
  EXPECT_EQ(code_after_section(bytes, amqp::kProperties), amqp::kList8);
  EXPECT_EQ(code_after_section(bytes, amqp::kApplicationProperties), amqp::kMap8);
}

// The one-byte size counts the count byte too: 254 bytes of items are the most a map8 holds.
TEST(eventhubs_message_builder_test, sections_at_the_one_byte_limit_decode_in_either_form) {
  for (const std::size_t value_size : {std::size_t{249}, std::size_t{250}}) {
    Event event = sample_event();
    event.properties = {{"n", std::string(value_size, 'v')}};  // items: 1+1+1 + 1+1+value_size bytes
    std::string bytes;
    encode_event(event, true, bytes);
    EXPECT_EQ(code_after_section(bytes, amqp::kApplicationProperties), value_size == 249 ? amqp::kMap8 : amqp::kMap32)
        << value_size;
    const proton::message message = decoded(event);
    EXPECT_EQ(proton::get<std::string>(message.properties().get("n")), std::string(value_size, 'v'));
    EXPECT_EQ(std::string(proton::get<proton::binary>(message.body())), event.body);
  }
}

// A batch envelope, read back section by section with Proton's C decoder: the key annotation, then one
// data section per event, each a whole message that decodes to that event.
TEST(eventhubs_message_builder_test, a_batch_envelope_holds_each_event_whole_in_its_own_data_section) {
  Event small = sample_event();
  Event large = sample_event();
  large.entry_id = "1732700000000-8";
  large.body = std::string(300, 'x');  // the event's encoding needs the four-byte binary length
  std::string envelope;
  encode_batch_envelope_head(small.partition_key, true, envelope);
  for (const Event* event : {&small, &large}) {
    std::string encoded;
    encode_event(*event, true, encoded);
    std::string header;
    encode_batch_section_header(encoded.size(), header);
    EXPECT_EQ(header.size(), batch_section_overhead(encoded.size()));
    envelope += header + encoded;
  }
  pn_data_t* data = pn_data(0);
  std::size_t offset = 0;
  while (offset < envelope.size()) {
    const ssize_t used = pn_data_decode(data, envelope.data() + offset, envelope.size() - offset);
    ASSERT_GT(used, 0);
    offset += static_cast<std::size_t>(used);
  }
  pn_data_rewind(data);
  std::vector<std::uint64_t> descriptors;
  std::vector<proton::message> events;
  while (pn_data_next(data)) {
    ASSERT_EQ(pn_data_type(data), PN_DESCRIBED);
    pn_data_enter(data);
    pn_data_next(data);
    descriptors.push_back(pn_data_get_ulong(data));
    pn_data_next(data);
    if (pn_data_type(data) == PN_BINARY) {
      const pn_bytes_t bytes = pn_data_get_binary(data);
      events.emplace_back().decode(std::vector<char>(bytes.start, bytes.start + bytes.size));
    }
    pn_data_exit(data);
  }
  pn_data_free(data);
  EXPECT_EQ(descriptors, (std::vector<std::uint64_t>{0x72, 0x75, 0x75}));  // annotations, data, data
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(proton::get<std::string>(events[0].id()), small.entry_id);
  EXPECT_EQ(proton::get<std::string>(events[1].id()), large.entry_id);
  EXPECT_EQ(std::string(proton::get<proton::binary>(events[1].body())), large.body);
  EXPECT_EQ(proton::get<std::string>(events[1].message_annotations().get(proton::annotation_key("x-opt-partition-key"))),
            "customer-42");
  EXPECT_EQ(proton::get<std::string>(events[0].properties().get("redis-stream")), "orders");

  // A partition target: no key annotation anywhere, and an envelope with nothing before its sections.
  encode_batch_envelope_head(small.partition_key, false, envelope);
  EXPECT_TRUE(envelope.empty());
}

}  // namespace
}  // namespace connector
