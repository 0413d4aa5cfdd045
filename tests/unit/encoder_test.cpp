#include "core/encoder.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/errors.hpp"
#include "core/json_writer.hpp"

namespace connector {
namespace {

StreamEntry entry(std::string id, StreamFields fields) {
  StreamEntry result;
  result.id = std::move(id);
  result.fields = std::move(fields);
  return result;
}

std::string property(const Event& event, const std::string& name) {
  for (const auto& [key, value] : event.properties) {
    if (key == name) return value;
  }
  return "<missing>";
}

TEST(json_writer_test, utf8_validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_TRUE(is_valid_utf8(std::string("nul\0inside", 10)));
  EXPECT_FALSE(is_valid_utf8("\xC3"));              // truncated
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("ok\x80"));
}

TEST(json_writer_test, escapes_what_json_requires) {
  std::string out;
  append_json_string(out, std::string("a\"b\\c\nd\te\x01\0f", 12));
  EXPECT_EQ(out, R"("a\"b\\c\nd\te\u0001\u0000f")");
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), std::string("a\"b\\c\nd\te\x01\0f", 12));
}

// The scans go eight bytes at a time: a byte that matters must be found at every offset of a word, in
// words of every kind (plain ASCII, UTF-8, all bytes of one value) and in the tail after the last word.
TEST(json_writer_test, every_byte_that_matters_is_found_at_every_offset) {
  const std::string fillers[] = {"abcdefghijklmnopqrstuvwx", "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
                                 std::string(24, '~'), std::string(24, ' ')};
  for (const auto& filler : fillers) {
    for (std::size_t length = 1; length <= filler.size(); ++length) {
      for (std::size_t at = 0; at < length; ++at) {
        for (const char special : {'"', '\\', '\n', '\x01', '\x1F', '\0'}) {
          std::string text = filler.substr(0, length);
          if (static_cast<unsigned char>(text[at]) >= 0x80) continue;  // keep the UTF-8 filler whole
          text[at] = special;
          std::string out;
          append_json_string(out, text);
          if (!is_valid_utf8(text)) continue;
          EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), text) << "offset " << at << " of " << length;
          EXPECT_EQ(out, nlohmann::json(text).dump()) << "offset " << at << " of " << length;
        }
        std::string bad = std::string(length, 'a');
        bad[at] = '\xFF';
        EXPECT_FALSE(is_valid_utf8(bad)) << "offset " << at << " of " << length;
        std::string truncated = std::string(length, 'a') + "\xE2\x82";
        EXPECT_FALSE(is_valid_utf8(truncated)) << length;
      }
    }
  }
}

// The escape scan and the UTF-8 check are one pass that skips plain ASCII a word at a time and rolls
// back to base64 on the first ill-formed sequence: each piece (valid, invalid, needing an escape) is
// put at every offset across the first two word boundaries, with plain ASCII on both sides, and the
// output must be exactly nlohmann's (whose strict UTF-8 check is the reference) or the base64 form.
TEST(json_writer_test, one_pass_matches_the_reference_across_word_boundaries) {
  const std::string pieces[] = {
      "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF",  // valid
      "\x80", "\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80",   // invalid
      "\xF4\x90\x80\x80", "\xF8\x88\x80\x80\x80", "\xFF", "\xC3\xA9\x80", "\xC3(",
      "\"", "\\", "\x7F", " ", "~", std::string(1, '\0'), "\x1F", "\n",                     // ASCII
      "\"\xC3\xA9\x01\xFF", "\\\xE2\x82\xAC\""};                         // escapes, then (in)valid
  for (const auto& piece : pieces) {
    for (std::size_t before = 0; before <= 25; ++before) {
      for (std::size_t after = 0; after <= 9; ++after) {
        const std::string text = std::string(before, 'a') + piece + std::string(after, 'b');
        std::string expected_value;
        std::string expected_key;
        try {
          expected_value = expected_key = nlohmann::json(text).dump();
        } catch (const nlohmann::json::type_error&) {  // not UTF-8
          expected_value = "{\"$base64\":\"" + base64_encode(text) + "\"}";
          expected_key = "\"$base64:" + base64_encode(text) + "\"";
        }
        const std::string where = "piece (base64) " + base64_encode(piece) + " after " + std::to_string(before) +
                                  " ASCII bytes, before " + std::to_string(after);
        std::string out = "[";
        append_json_text_or_base64(out, text);
        EXPECT_EQ(out, "[" + expected_value) << where;
        out.assign(1, '[');
        append_json_key(out, text);
        EXPECT_EQ(out, "[" + expected_key) << where;
        EXPECT_EQ(is_valid_utf8(text), expected_value == expected_key) << where;
        if (expected_value == expected_key) {
          out.clear();
          append_json_string(out, text);
          EXPECT_EQ(out, expected_value) << where;
        }
      }
    }
  }
}

TEST(json_writer_test, base64) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode(std::string_view("\xFF\xFE\x00", 3)), "//4A");
}

TEST(encoder_test, default_mapping_is_a_json_object_in_stream_order) {
  Encoder encoder({"telemetry", std::nullopt, std::nullopt});
  const Event event =
      encoder.encode(entry("1700000000000-0", {{"temp", "21.5"}, {"device", "d-1"}, {"a", "x"}}));
  EXPECT_EQ(event.entry_id, "1700000000000-0");
  EXPECT_EQ(event.body, R"({"temp":"21.5","device":"d-1","a":"x"})");
  EXPECT_EQ(event.content_type, "application/json");
  EXPECT_TRUE(event.body_is_json);
  EXPECT_EQ(property(event, "redis-stream"), "telemetry");
  EXPECT_EQ(property(event, "redis-id"), "1700000000000-0");
  EXPECT_TRUE(event.partition_key.empty());
}

TEST(encoder_test, binary_values_and_names_survive_as_marked_base64) {
  Encoder encoder({"s", std::nullopt, std::nullopt});
  const std::string binary("\xFF\x00\xFE", 3);
  const Event event =
      encoder.encode(entry("1-1", {{"blob", binary}, {binary, "v"}, {"nul", std::string("a\0b", 3)}}));
  const auto json = nlohmann::json::parse(event.body);  // must stay valid JSON
  EXPECT_EQ(json["blob"]["$base64"], "/wD+");
  EXPECT_EQ(json["$base64:/wD+"], "v");
  EXPECT_EQ(json["nul"].get<std::string>(), std::string("a\0b", 3));
}

TEST(encoder_test, text_that_needs_escaping_anywhere_in_the_entry_keeps_order_and_commas) {
  // Plain fields go through the fast path up to the first that needs escaping, UTF-8 or base64; every
  // position of that field, as name or value, must give the same object.
  Encoder encoder({"s", std::nullopt, std::nullopt});
  const std::vector<std::pair<std::string, std::string>> specials = {
      {"q\"", R"("q\"")"}, {"caf\xC3\xA9", "\"caf\xC3\xA9\""}, {std::string("\xFF", 1), R"({"$base64":"/w=="})"}};
  for (const auto& [text, as_value] : specials) {
    for (std::size_t at = 0; at < 3; ++at) {
      StreamFields fields;
      std::string expected = "{";
      for (std::size_t i = 0; i < 3; ++i) {
        if (i != 0) expected += ',';
        const std::string value = i == at ? text : "v" + std::to_string(i);
        fields.add("k" + std::to_string(i), value);
        expected += "\"k" + std::to_string(i) + "\":" + (i == at ? as_value : "\"" + value + "\"");
      }
      expected += '}';
      EXPECT_EQ(encoder.encode(entry("1-1", fields)).body, expected) << "special at " << at;
    }
  }
  std::string prefix = "[";
  append_fields_as_json(prefix, entry("1-1", {{"a", "b"}}));
  EXPECT_EQ(prefix, R"([{"a":"b"})");  // appends to what is there
}

// Names and values longer than the scan's sixteen-byte blocks: a quote at any offset, in the name or the
// value of the second field, leaves the first on the fast path and the object the same as nlohmann's.
TEST(encoder_test, long_fields_that_need_escaping_at_any_offset_give_the_reference_object) {
  Encoder encoder({"s", std::nullopt, std::nullopt});
  for (std::size_t length = 1; length <= 40; ++length) {
    for (std::size_t at = 0; at < length; ++at) {
      for (const bool in_name : {false, true}) {
        std::string text(length, 'x');
        text[at] = '"';
        const std::string name = in_name ? text : "name";
        const std::string value = in_name ? "value" : text;
        const std::string first(length, 'f');
        const std::string body = encoder.encode(entry("1-1", {{first, first}, {name, value}})).body;
        nlohmann::ordered_json expected;
        expected[first] = first;
        expected[name] = value;
        EXPECT_EQ(body, expected.dump()) << "offset " << at << " of " << length << (in_name ? " in the name" : "");
      }
    }
  }
}

TEST(encoder_test, repeated_field_names_are_kept) {
  Encoder encoder({"s", std::nullopt, std::nullopt});
  EXPECT_EQ(encoder.encode(entry("1-1", {{"k", "1"}, {"k", "2"}})).body, R"({"k":"1","k":"2"})");
}

TEST(encoder_test, empty_entry_is_an_empty_object) {
  Encoder encoder({"s", std::nullopt, std::nullopt});
  EXPECT_EQ(encoder.encode(entry("1-1", {})).body, "{}");
}

TEST(encoder_test, body_field_mapping_keeps_raw_bytes_and_makes_properties) {
  Encoder encoder({"s", std::string("payload"), std::string("device")});
  const std::string raw("\x00\x01binary\xFF", 9);
  const Event event = encoder.encode(entry("5-0", {{"device", "d-7"}, {"payload", raw}, {"kind", "x"}}));
  EXPECT_EQ(event.body, raw);
  EXPECT_FALSE(event.body_is_json);
  EXPECT_TRUE(event.content_type.empty());
  EXPECT_EQ(event.partition_key, "d-7");
  EXPECT_EQ(property(event, "device"), "d-7");
  EXPECT_EQ(property(event, "kind"), "x");
  EXPECT_EQ(property(event, "payload"), "<missing>");
  EXPECT_EQ(property(event, "redis-id"), "5-0");
}

TEST(encoder_test, a_property_name_that_is_not_utf8_becomes_a_marked_base64_name) {
  Encoder encoder({"s", std::string("payload"), std::nullopt});
  const std::string name("n\xFF", 2);
  const Event event = encoder.encode(entry("6-0", {{"payload", "p"}, {name, std::string("v\xFE", 2)}}));
  EXPECT_EQ(property(event, "$base64:" + base64_encode(name)), std::string("v\xFE", 2));  // value as is
  for (const auto& [key, value] : event.properties) EXPECT_TRUE(is_valid_utf8(key)) << key;
}

TEST(encoder_test, missing_body_field_is_a_message_processing_error) {
  Encoder encoder({"orders", std::string("payload"), std::nullopt});
  try {
    encoder.encode(entry("9-3", {{"other", "x"}}));
    FAIL() << "expected MessageProcessingError";
  } catch (const MessageProcessingError& error) {
    EXPECT_NE(std::string(error.what()).find("9-3"), std::string::npos);
    EXPECT_NE(std::string(error.what()).find("payload"), std::string::npos);
  }
}

TEST(encoder_test, encode_into_reuses_and_resets_the_event) {
  Encoder encoder({"s", std::nullopt, std::string("pk")});
  Event event;
  encoder.encode_into(entry("1-0", {{"pk", "a"}}), event);
  encoder.encode_into(entry("2-0", {{"x", "y"}}), event);
  EXPECT_EQ(event.entry_id, "2-0");
  EXPECT_EQ(event.body, R"({"x":"y"})");
  EXPECT_TRUE(event.partition_key.empty());
  EXPECT_EQ(event.properties.size(), 2u);
}

TEST(encoder_test, encode_into_an_event_with_more_properties_keeps_only_the_new_ones) {
  Encoder encoder({"s", std::string("body"), std::nullopt});
  Event event;
  encoder.encode_into(entry("1-0", {{"body", "a"}, {"x", "1"}, {"y", "2"}, {"z", "3"}}), event);
  ASSERT_EQ(event.properties.size(), 5u);
  encoder.encode_into(entry("2-0", {{"w", "4"}, {"body", "b"}}), event);
  const decltype(event.properties) expected = {{"w", "4"}, {"redis-stream", "s"}, {"redis-id", "2-0"}};
  EXPECT_EQ(event.properties, expected);
  EXPECT_EQ(event.body, "b");
}

}  // namespace
}  // namespace connector
