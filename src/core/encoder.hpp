#pragma once
// Stream entry → event (README "Event mapping").
#include <optional>
#include <string>

#include "core/event.hpp"

namespace connector {

struct EncoderOptions {
  std::string stream_key;
  std::optional<std::string> body_field;           // MESSAGE_BODY_FIELD
  std::optional<std::string> partition_key_field;  // PARTITION_KEY_FIELD
};

/// Turns stream entries into events. Stateless after construction; safe to share between threads.
///
/// Default mapping: the body is a JSON object of the fields in stream order (a repeated field name is
/// kept twice, as Redis keeps it). Redis values are bytes, so a value that is not valid UTF-8 becomes
/// {"$base64":"<standard base64>"} and a field name that is not valid UTF-8 becomes the key
/// "$base64:<standard base64>"; the body stays valid JSON and nothing is lost.
/// With a body field, the body is that field's raw bytes and every other field is a property.
class Encoder {
 public:
  explicit Encoder(EncoderOptions options);

  /// Throws MessageProcessingError when the entry cannot become an event (its body field is missing).
  Event encode(const StreamEntry& entry) const;
  /// Same, reusing `out`'s buffers.
  void encode_into(const StreamEntry& entry, Event& out) const;

  const EncoderOptions& options() const noexcept { return options_; }

 private:
  EncoderOptions options_;
};

/// The JSON object body of the default mapping (exposed for the local file output and the tests).
void append_fields_as_json(std::string& out, const StreamEntry& entry);

}  // namespace connector
