#include "eventhubs/message_builder.hpp"

#include <openssl/evp.h>

#include <array>
#include <proton/annotation_key.hpp>
#include <proton/binary.hpp>
#include <proton/message_id.hpp>
#include <proton/scalar.hpp>

#include "core/json_writer.hpp"

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

void build_message(const Event& event, bool with_partition_key, proton::message& out) {
  out.clear();
  out.id(proton::message_id(event.entry_id));
  if (!event.content_type.empty()) out.content_type(event.content_type);
  auto& properties = out.properties();
  for (const auto& [name, value] : event.properties) {
    // An AMQP string must be UTF-8; other bytes go out as AMQP binary, which Event Hubs keeps and the
    // SDKs hand to consumers as a byte array (.NET: byte[], Java: byte[], JS: Uint8Array).
    if (is_valid_utf8(value)) {
      properties.put(name, proton::scalar(value));
    } else {
      properties.put(name, proton::scalar(proton::binary(value.begin(), value.end())));
    }
  }
  if (with_partition_key && !event.partition_key.empty()) {
    out.message_annotations().put(proton::annotation_key("x-opt-partition-key"),
                                  partition_key_annotation(event.partition_key));
  }
  // A binary body with inferred(true) is encoded as a data section; without it, as an AmqpValue.
  out.body(proton::binary(event.body.begin(), event.body.end()));
  out.inferred(true);
}

std::size_t encoded_size(const proton::message& message) {
  std::vector<char> buffer;
  message.encode(buffer);
  return buffer.size();
}

std::size_t encoded_size_upper_bound(const Event& event) {
  // Each variable-size item is at most: 1 constructor byte + 4 length bytes + its bytes (str32/vbin32/
  // sym32). Sections add a 3-byte descriptor and a 9-byte list32/map32 header; the fixed 512 covers
  // those headers and the properties list's null fields many times over.
  constexpr std::size_t kItem = 5;
  std::size_t size = 512 + kItem + event.body.size();
  size += kItem + event.entry_id.size() + kItem + event.content_type.size();
  for (const auto& [name, value] : event.properties) size += 2 * kItem + name.size() + value.size();
  size += 2 * kItem + std::string_view("x-opt-partition-key").size() +
          std::max(event.partition_key.size(), std::size_t{64});
  return size;
}

}  // namespace connector
