#include "plain_event.hpp"

#include <cstddef>
#include <cstdint>

#include "eventhubs/amqp_codes.hpp"

namespace connector {

namespace {

using namespace amqp;

/// A cursor over encoded AMQP values; every read fails (returns false) rather than run past the end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return at_ == bytes_.size(); }

  bool byte(unsigned char& out) {
    if (at_ >= bytes_.size()) return false;
    out = static_cast<unsigned char>(bytes_[at_++]);
    return true;
  }
  bool number(std::size_t width, std::uint64_t& out) {
    if (bytes_.size() - at_ < width) return false;
    out = 0;
    for (std::size_t i = 0; i < width; ++i) out = (out << 8) | static_cast<unsigned char>(bytes_[at_ + i]);
    at_ += width;
    return true;
  }
  bool take(std::size_t size, std::string_view& out) {
    if (bytes_.size() - at_ < size) return false;
    out = bytes_.substr(at_, size);
    at_ += size;
    return true;
  }
  /// A value of any type, not looked into.
  bool skip() {
    unsigned char code = 0;
    if (!byte(code)) return false;
    if (code == kDescribed) return skip() && skip();
    std::uint64_t size = 0;
    std::string_view ignored;
    switch (code >> 4) {
      case 0x4: return true;
      case 0x5: return number(1, size);
      case 0x6: return number(2, size);
      case 0x7: return number(4, size);
      case 0x8: return number(8, size);
      case 0x9: return take(16, ignored);
      case 0xa: case 0xc: case 0xe: return number(1, size) && take(size, ignored);
      case 0xb: case 0xd: case 0xf: return number(4, size) && take(size, ignored);
      default: return false;
    }
  }
  /// A string, symbol or binary: its bytes and its type code (one of the 8-bit forms).
  bool variable(unsigned char code, std::string_view& out, unsigned char& kind) {
    std::uint64_t size = 0;
    switch (code) {
      case kVbin8: case kStr8: case kSym8:
        kind = code;
        return number(1, size) && take(size, out);
      case kVbin32: case kStr32: case kSym32:
        kind = static_cast<unsigned char>(code - 0x10);
        return number(4, size) && take(size, out);
      default:
        return false;
    }
  }
  /// The item count of a list or map; false for any other type.
  bool compound(bool map, std::uint64_t& count) {
    unsigned char code = 0;
    std::uint64_t size = 0;
    if (!byte(code)) return false;
    if (!map && code == kList0) {
      count = 0;
      return true;
    }
    if (code == (map ? kMap8 : kList8)) return number(1, size) && number(1, count);
    if (code == (map ? kMap32 : kList32)) return number(4, size) && number(4, count);
    return false;
  }
  /// A section descriptor: 0x00 then a smallulong or ulong.
  bool descriptor(std::uint64_t& out) {
    unsigned char code = 0;
    if (!byte(code) || code != kDescribed || !byte(code)) return false;
    if (code == kSmallUlong) return number(1, out);
    if (code == kUlong) return number(8, out);
    return false;
  }

 private:
  std::string_view bytes_;
  std::size_t at_ = 0;
};

// The partition key annotation; other annotations are skipped, but their keys must be symbols or ulongs.
bool read_annotations(Reader& in, PlainEvent& out) {
  std::uint64_t count = 0;
  if (!in.compound(true, count) || count % 2 != 0) return false;
  for (std::uint64_t i = 0; i < count; i += 2) {
    unsigned char code = 0, kind = 0;
    std::string_view key;
    if (!in.byte(code)) return false;
    if (code == kSmallUlong || code == kUlong) {
      std::uint64_t ignored = 0;
      if (!in.number(code == kSmallUlong ? 1 : 8, ignored) || !in.skip()) return false;
      continue;
    }
    if (!in.variable(code, key, kind) || kind != kSym8) return false;
    if (key != "x-opt-partition-key") {
      if (!in.skip()) return false;
      continue;
    }
    if (!in.byte(code)) return false;
    if (code == kNull) continue;
    std::string_view value;
    if (!in.variable(code, value, kind)) return false;
    out.partition_key = value;
    out.partition_key_is_string = kind == kStr8;
  }
  return true;
}

// message-id (index 0) and content-type (index 6); the other fields are skipped.
bool read_properties(Reader& in, PlainEvent& out) {
  std::uint64_t count = 0;
  if (!in.compound(false, count)) return false;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (i != 0 && i != 6) {
      if (!in.skip()) return false;
      continue;
    }
    unsigned char code = 0, kind = 0;
    std::string_view value;
    if (!in.byte(code)) return false;
    if (code == kNull) continue;
    if (!in.variable(code, value, kind) || kind != (i == 0 ? kStr8 : kSym8)) return false;
    if (i == 0) {
      out.message_id = value;
    } else if (!value.empty()) {
      out.content_type = value;
    }
  }
  return true;
}

bool read_application_properties(Reader& in, PlainEvent& out) {
  std::uint64_t count = 0;
  if (!in.compound(true, count) || count % 2 != 0) return false;
  for (std::uint64_t i = 0; i < count; i += 2) {
    PlainEvent::Property property;
    unsigned char code = 0, kind = 0;
    if (!in.byte(code) || !in.variable(code, property.name, kind) || kind != kStr8) return false;
    for (const auto& earlier : out.properties) {
      if (earlier.name == property.name) return false;  // which one wins is Proton's business
    }
    if (!in.byte(code)) return false;
    if (code != kNull) {
      if (!in.variable(code, property.value, kind)) return false;
      property.string = kind == kStr8;
      property.binary = kind == kVbin8;
    }
    out.properties.push_back(property);
  }
  return true;
}

bool read_section(Reader& in, std::uint64_t descriptor, PlainEvent& out, int& data_sections) {
  switch (descriptor) {
    case kHeader:
    case kDeliveryAnnotations:
    case kFooter:
      return in.skip();
    case kMessageAnnotations:
      return read_annotations(in, out);
    case kProperties:
      return read_properties(in, out);
    case kApplicationProperties:
      return read_application_properties(in, out);
    case kData: {
      unsigned char code = 0, kind = 0;
      ++data_sections;
      return in.byte(code) && in.variable(code, out.body, kind) && kind == kVbin8;
    }
    default:  // amqp-sequence, amqp-value or unknown: a body Proton describes better
      return false;
  }
}

}  // namespace

void PlainEvent::clear() {
  partition_key.reset();
  partition_key_is_string = false;
  message_id.reset();
  content_type.reset();
  properties.clear();
  body = {};
}

bool read_plain_event(std::string_view encoded, PlainEvent& out) {
  out.clear();
  Reader in(encoded);
  int data_sections = 0;
  while (!in.done()) {
    std::uint64_t descriptor = 0;
    if (!in.descriptor(descriptor) || !read_section(in, descriptor, out, data_sections)) return false;
  }
  const bool own_fields = out.message_id || out.content_type || !out.properties.empty();
  return data_sections == 1 && own_fields;
}

}  // namespace connector
