#include "core/encoder.hpp"

#include <fmt/format.h>

#include <cstring>

#include "common/errors.hpp"
#include "core/json_writer.hpp"

namespace connector {

namespace {

/// The size of the default mapping's body when nothing needs escaping.
std::size_t json_object_size(const StreamEntry& entry) {
  std::size_t size = 2;  // {}
  for (const auto& field : entry.fields) size += field.name.size() + field.value.size() + 6;  // "":"",
  return size;
}

char* put_bytes(char* out, std::string_view bytes) {
  if (!bytes.empty()) std::memcpy(out, bytes.data(), bytes.size());
  return out + bytes.size();
}

}  // namespace

Encoder::Encoder(EncoderOptions options) : options_(std::move(options)) {}

void append_fields_as_json(std::string& out, const StreamEntry& entry) {
  // Telemetry is mostly plain ASCII. While every name and value is, the object goes through a pointer
  // into room sized for it: std::string's bookkeeping on each of the many small appends was most of the
  // cost. The first text that needs escaping, a UTF-8 check or base64 continues through the general path.
  const std::size_t start = out.size();
  out.resize(start + json_object_size(entry));
  char* p = out.data() + start;
  *p++ = '{';
  std::size_t done = 0;
  for (const auto& field : entry.fields) {
    if (!is_plain_json_text(field.name) || !is_plain_json_text(field.value)) break;
    if (done != 0) *p++ = ',';
    *p++ = '"';
    p = put_bytes(p, field.name);
    *p++ = '"';
    *p++ = ':';
    *p++ = '"';
    p = put_bytes(p, field.value);
    *p++ = '"';
    ++done;
  }
  out.resize(static_cast<std::size_t>(p - out.data()));
  for (std::size_t i = done; i < entry.fields.size(); ++i) {
    if (i != 0) out.push_back(',');
    append_json_key(out, entry.fields[i].name);
    out.push_back(':');
    append_json_text_or_base64(out, entry.fields[i].value);
  }
  out.push_back('}');
}

Event Encoder::encode(const StreamEntry& entry) const {
  Event event;
  encode_into(entry, event);
  return event;
}

void Encoder::encode_into(const StreamEntry& entry, Event& out) const {
  out.entry_id = entry.id;
  out.body.clear();
  out.partition_key.clear();
  // Properties are assigned over the ones `out` holds (an event of a spent batch): their strings keep
  // their capacity, as entry_id and body do.
  std::size_t properties = 0;
  auto put_property = [&](std::string_view name, std::string_view value) {
    if (properties == out.properties.size()) out.properties.emplace_back();
    auto& [property_name, property_value] = out.properties[properties++];
    property_name.assign(name);
    property_value.assign(value);
  };

  if (options_.partition_key_field) {
    for (const auto& field : entry.fields) {
      if (field.name == *options_.partition_key_field) {
        out.partition_key = field.value;
        break;
      }
    }
  }

  if (!options_.body_field) {
    append_fields_as_json(out.body, entry);
    out.content_type = "application/json";
    out.body_is_json = true;
  } else {
    bool found = false;
    out.properties.reserve(entry.fields.size() + 1);
    for (const auto& field : entry.fields) {
      if (!found && field.name == *options_.body_field) {
        out.body = field.value;
        found = true;
      } else if (is_valid_utf8(field.name)) {
        put_property(field.name, field.value);
      } else {
        // A property name is an AMQP string, which must be UTF-8: the same rule as for JSON keys.
        put_property("$base64:" + base64_encode(field.name), field.value);
      }
    }
    if (!found) {
      throw MessageProcessingError(fmt::format(
          "entry {} of stream '{}' has no field '{}' (MESSAGE_BODY_FIELD); it cannot become an event",
          entry.id, options_.stream_key, *options_.body_field));
    }
    out.content_type = {};
    out.body_is_json = false;
  }
  put_property("redis-stream", options_.stream_key);
  put_property("redis-id", entry.id);
  out.properties.resize(properties);
}

}  // namespace connector
