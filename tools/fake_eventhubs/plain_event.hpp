#pragma once
// The fields fake-eventhubs checks and records of one event, read straight from the delivery's AMQP
// bytes: the common shape costs no proton::message maps (the stand-in's per-event cost at 200 000/s).
#include <optional>
#include <string_view>
#include <vector>

namespace connector {

/// One event message of the plain shape (what the connector and most clients send), as views into its
/// encoded bytes.
struct PlainEvent {
  struct Property {
    std::string_view name;
    std::string_view value;  // bytes; empty for null
    bool string = false;     // AMQP string (must be UTF-8)
    bool binary = false;     // AMQP binary
  };
  std::optional<std::string_view> partition_key;  // x-opt-partition-key, unless absent or null
  bool partition_key_is_string = false;           // an AMQP string (must be UTF-8), not a symbol or binary
  std::optional<std::string_view> message_id;
  std::optional<std::string_view> content_type;
  std::vector<Property> properties;  // application properties, in order, names unique
  std::string_view body;             // the one data section

  void clear();
};

/// Reads `encoded` into `out` when it is a plain event: sections from header to footer with smallulong
/// descriptors; annotation keys symbols or ulongs; a partition key of string, symbol, binary or null;
/// a string (or no) message-id and a symbol (or no) content type; application properties with unique
/// string names and string, symbol, binary or null values; exactly one data section and no other body;
/// and a message-id, content type or application property (a message with none may be a batch
/// envelope). Anything else returns false and is left to Proton's full decoding. Does not validate what
/// it skips: Proton decoded the delivery before the stand-in sees it.
bool read_plain_event(std::string_view encoded, PlainEvent& out);

}  // namespace connector
