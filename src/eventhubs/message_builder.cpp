#include "eventhubs/message_builder.hpp"

#include <openssl/evp.h>

#include <array>
#include <cstdint>

#include "core/json_writer.hpp"
#include "eventhubs/amqp_codes.hpp"

namespace connector {

std::string partition_key_annotation(std::string_view key) {
  if (key.size() <= kMaxPartitionKeyLength && is_valid_utf8(key)) return std::string(key);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(key.data(), key.size(), digest.data(), &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(length * 2);
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0x0F]);
  }
  return hex;
}

namespace {

using namespace amqp;  // the codes read as in the specification

void put_byte(std::string& out, unsigned char byte) { out.push_back(static_cast<char>(byte)); }

void put_u32(std::string& out, std::uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out.append(bytes, sizeof bytes);
}

// The constructor and length of a variable-width value: the one-byte length form when it fits, else
// the four-byte one.
void put_variable_header(std::string& out, Code code8, Code code32, std::size_t size) {
  if (size <= 0xff) {
    put_byte(out, code8);
    put_byte(out, static_cast<unsigned char>(size));
  } else {
    put_byte(out, code32);
    put_u32(out, static_cast<std::uint32_t>(size));
  }
}

void put_variable(std::string& out, Code code8, Code code32, std::string_view bytes) {
  put_variable_header(out, code8, code32, bytes.size());
  out.append(bytes);
}

void put_section(std::string& out, Section descriptor) {
  put_byte(out, kDescribed);
  put_byte(out, kSmallUlong);
  put_byte(out, descriptor);
}

// A list or map whose size and count are written by close() once its items are in. It is built as the
// 32-bit form and shrunk to the 8-bit one AMQP defines for small compounds when size and count fit in a
// byte: six bytes less per section of every event, on the wire and against the service's message size
// limit.
class Compound {
 public:
  Compound(std::string& out, Code code32) : out_(out), code32_(code32) {
    put_byte(out_, code32);
    at_ = out_.size();
    out_.append(8, '\0');
  }
  void close(std::uint32_t count) {
    const std::size_t items = out_.size() - at_ - 8;
    if (items + 1 <= 0xff && count <= 0xff) {  // the size counts the count field
      out_[at_ - 1] = static_cast<char>(code32_ == kList32 ? kList8 : kMap8);
      out_[at_] = static_cast<char>(items + 1);
      out_[at_ + 1] = static_cast<char>(count);
      out_.erase(at_ + 2, 6);
      return;
    }
    write_u32(at_, static_cast<std::uint32_t>(items + 4));
    write_u32(at_ + 4, count);
  }

 private:
  void write_u32(std::size_t at, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out_[at++] = static_cast<char>(value >> shift);
  }

  std::string& out_;
  const Code code32_;
  std::size_t at_ = 0;
};

// True when a later property has the same name: only the last one is sent (a map key must be unique).
bool repeated_later(const Event& event, std::size_t index) {
  const std::string& name = event.properties[index].first;
  for (std::size_t later = index + 1; later < event.properties.size(); ++later) {
    if (event.properties[later].first == name) return true;
  }
  return false;
}

void put_application_properties(const Event& event, std::string& out) {
  put_section(out, kApplicationProperties);
  Compound map(out, kMap32);
  std::uint32_t count = 0;
  for (std::size_t i = 0; i < event.properties.size(); ++i) {
    if (repeated_later(event, i)) continue;
    const auto& [name, value] = event.properties[i];
    put_variable(out, kStr8, kStr32, name);
    // An AMQP string must be UTF-8; other bytes go out as AMQP binary, which Event Hubs keeps and the
    // SDKs hand to consumers as a byte array (.NET: byte[], Java: byte[], JS: Uint8Array).
    if (is_valid_utf8(value)) {
      put_variable(out, kStr8, kStr32, value);
    } else {
      put_variable(out, kVbin8, kVbin32, value);
    }
    count += 2;
  }
  map.close(count);
}

}  // namespace

void encode_event(const Event& event, bool with_partition_key, std::string& out) {
  encode_event_head(event, with_partition_key, out);
  out.append(event.body);
}

namespace {

void put_partition_key(std::string_view key, std::string& out) {
  put_section(out, kMessageAnnotations);
  Compound map(out, kMap32);
  put_variable(out, kSym8, kSym32, "x-opt-partition-key");
  if (key.size() <= kMaxPartitionKeyLength && is_valid_utf8(key)) {
    put_variable(out, kStr8, kStr32, key);  // the common case, without a copy
  } else {
    put_variable(out, kStr8, kStr32, partition_key_annotation(key));
  }
  map.close(2);
}

}  // namespace

void encode_event_head(const Event& event, bool with_partition_key, std::string& out) {
  out.clear();
  if (with_partition_key && !event.partition_key.empty()) put_partition_key(event.partition_key, out);
  put_section(out, kProperties);
  Compound list(out, kList32);
  put_variable(out, kStr8, kStr32, event.entry_id);  // message-id
  if (event.content_type.empty()) {
    list.close(1);
  } else {
    out.append(5, static_cast<char>(kNull));  // user-id, to, subject, reply-to, correlation-id
    put_variable(out, kSym8, kSym32, event.content_type);
    list.close(7);
  }
  if (!event.properties.empty()) put_application_properties(event, out);
  put_section(out, kData);
  put_variable_header(out, kVbin8, kVbin32, event.body.size());
}

void encode_batch_envelope_head(std::string_view partition_key, bool with_partition_key, std::string& out) {
  out.clear();
  if (with_partition_key && !partition_key.empty()) put_partition_key(partition_key, out);
}

void encode_batch_section_header(std::size_t event_size, std::string& out) {
  out.clear();
  put_section(out, kData);
  put_variable_header(out, kVbin8, kVbin32, event_size);
}

std::size_t batch_section_overhead(std::size_t event_size) { return 3 + (event_size <= 0xff ? 2 : 5); }

}  // namespace connector
