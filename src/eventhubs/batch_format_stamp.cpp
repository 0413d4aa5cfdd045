#include "eventhubs/batch_format_stamp.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/errors.hpp"
#include "eventhubs/amqp_codes.hpp"

namespace connector {

namespace {

using namespace amqp;  // the codes read as in the specification

constexpr std::uint64_t kOpen = 0x10;
constexpr std::uint64_t kTransfer = 0x14;
constexpr std::string_view kOpenName = "amqp:open:list";
constexpr std::string_view kTransferName = "amqp:transfer:list";
constexpr std::size_t kFrameHeader = 8;  // size (4), doff, type, channel (2)
// The smallest max-frame-size a peer may announce (AMQP 1.0 part 2, "open").
constexpr std::uint32_t kMinMaxFrameSize = 512;
// A transfer's descriptor and its fields up to message-format take 30 bytes as Proton writes them, 65 at
// the most with a symbolic descriptor and eight-byte handle and delivery-id.
constexpr std::size_t kTransferWindow = 96;
// An open's container-id and hostname come before its max-frame-size; both are short names.
constexpr std::size_t kOpenWindow = 1024;

std::uint32_t get_u32(std::string_view bytes, std::size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

void put_byte(std::string& out, unsigned char byte) { out.push_back(static_cast<char>(byte)); }

void put_u32(std::string& out, std::uint32_t value) {
  const char bytes[4] = {static_cast<char>(value >> 24), static_cast<char>(value >> 16),
                         static_cast<char>(value >> 8), static_cast<char>(value)};
  out.append(bytes, sizeof bytes);
}

/// Reads encoded values from a frame's head, within `end`: the frame, then the performative's list.
class Reader {
 public:
  Reader(std::string_view head, std::size_t at, std::size_t end) : head_(head), at_(at), end_(end) {}

  std::size_t at() const { return at_; }
  std::size_t end() const { return end_; }

  unsigned char byte() { return static_cast<unsigned char>(take(1)[0]); }
  std::uint32_t u32() { return get_u32(take(4), 0); }
  std::string_view take(std::size_t n) {
    if (n > end_ - at_)
      throw EventHubsError(fmt::format("AMQP framing: a value runs past the end of its {}", within()));
    if (n > head_.size() - at_) {
      throw EventHubsError(fmt::format(
          "AMQP framing: a performative's first fields take more than the {} bytes looked at", head_.size()));
    }
    const std::string_view bytes = head_.substr(at_, n);
    at_ += n;
    return bytes;
  }

  /// Reads a list's constructor, size and count, and narrows the reading to the list's end.
  std::uint32_t list_count() {
    const unsigned char code = byte();
    std::uint32_t size = 0;
    std::uint32_t count = 0;
    if (code == kList8) {
      size = byte();
      if (size < 1) throw EventHubsError("AMQP framing: a list8 with size 0");
      count = byte();
      size -= 1;
    } else if (code == kList32) {
      size = u32();
      if (size < 4) throw EventHubsError(fmt::format("AMQP framing: a list32 with size {}", size));
      count = u32();
      size -= 4;
    } else if (code != kList0) {
      throw EventHubsError(
          fmt::format("AMQP framing: a performative whose fields are not a list (0x{:02x})", code));
    }
    if (size > end_ - at_)
      throw EventHubsError("AMQP framing: a performative runs past the end of its frame");
    end_ = at_ + size;
    in_list_ = true;
    return count;
  }

  /// Passes over one value of any type.
  void skip() {
    const unsigned char code = byte();
    if (code == kDescribed) {
      skip();  // the descriptor
      return skip();
    }
    // The high nibble of a constructor says how its value is laid out (AMQP 1.0 part 1, "Encodings").
    static constexpr std::size_t kFixedWidth[] = {0, 1, 2, 4, 8, 16};  // 0x4_ to 0x9_
    const unsigned layout = code >> 4;
    if (layout >= 0x4 && layout <= 0x9) {
      take(kFixedWidth[layout - 0x4]);
    } else if (layout == 0xa || layout == 0xc || layout == 0xe) {
      take(byte());  // variable width, compound or array, with a one-byte size
    } else if (layout == 0xb || layout == 0xd || layout == 0xf) {
      take(u32());
    } else {
      throw EventHubsError(fmt::format("AMQP framing: no type has the constructor 0x{:02x}", code));
    }
  }

 private:
  const char* within() const { return in_list_ ? "list" : "frame"; }

  std::string_view head_;
  std::size_t at_;
  std::size_t end_;
  bool in_list_ = false;
};

/// Reads a performative's descriptor and whether it is `code` (or its symbolic `name`). A frame's body
/// must be one: a described list.
bool is_performative(Reader& reader, std::uint64_t code, std::string_view name) {
  if (reader.byte() != kDescribed) throw EventHubsError("AMQP framing: a frame's body is not a performative");
  switch (const unsigned char constructor = reader.byte()) {
    case kSmallUlong:
      return reader.byte() == code;
    case kUlong: {
      const std::string_view bytes = reader.take(8);
      return get_u32(bytes, 0) == 0 && get_u32(bytes, 4) == code;
    }
    case kSym8:
      return reader.take(reader.byte()) == name;
    case kSym32:
      return reader.take(reader.u32()) == name;
    default:
      throw EventHubsError(fmt::format(
          "AMQP framing: a performative's descriptor is neither ulong nor symbol (0x{:02x})", constructor));
  }
}

/// Whether the next field, a transfer's delivery-tag, is a sink's batch tag.
bool batch_tag(Reader& reader) {
  std::uint32_t length = 0;
  switch (const unsigned char code = reader.byte()) {
    case kNull:
      return false;
    case kVbin8:
      length = reader.byte();
      break;
    case kVbin32:
      length = reader.u32();
      break;
    default:
      throw EventHubsError(
          fmt::format("AMQP framing: a transfer's delivery-tag is not binary (0x{:02x})", code));
  }
  if (length != sizeof(std::uint64_t)) return false;
  std::uint64_t tag = 0;
  std::memcpy(&tag, reader.take(sizeof tag).data(), sizeof tag);
  return (tag & kBatchTagBit) != 0;
}

/// Passes over a transfer's message-format field, which must be a uint or null.
void skip_format(Reader& reader) {
  switch (const unsigned char code = reader.byte()) {
    case kNull:
    case kUint0:
      return;
    case kSmallUint:
      reader.take(1);
      return;
    case kUint:
      reader.take(4);
      return;
    default:
      throw EventHubsError(
          fmt::format("AMQP framing: a transfer's message-format is not a uint (0x{:02x})", code));
  }
}

}  // namespace

// ============================================================ AmqpFrameEditor

void AmqpFrameEditor::process(std::string_view in, std::string& out) {
  while (!in.empty()) {
    if (rest_ > 0) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(rest_, in.size()));
      out.append(in.data(), n);
      in.remove_prefix(n);
      rest_ -= n;
      continue;
    }
    if (passing_) {
      out.append(in);
      return;
    }
    if (head_.empty()) {
      // The usual case: the whole head is there, and no copy is needed to read it.
      const std::size_t length = head_length(in);
      if (in.size() >= length) {
        finish_head(in.substr(0, length), out);
        in.remove_prefix(length);
        continue;
      }
    }
    std::size_t length = head_length(head_);
    while (length > head_.size() && !in.empty()) {
      const std::size_t n = std::min(length - head_.size(), in.size());
      head_.append(in.data(), n);
      in.remove_prefix(n);
      length = head_length(head_);
    }
    if (length > head_.size()) return;  // the rest of the head comes with the next call
    finish_head(head_, out);
    head_.clear();
  }
}

std::size_t AmqpFrameEditor::head_length(std::string_view bytes) const {
  if (bytes.size() < kFrameHeader) return kFrameHeader;
  // A protocol header where a frame would start; as a frame size "AMQP" would be over 1 GB.
  if (bytes.substr(0, 4) == "AMQP") return kFrameHeader;
  const std::uint32_t size = get_u32(bytes, 0);
  const std::size_t body = std::size_t{static_cast<unsigned char>(bytes[4])} * 4;
  if (size < kFrameHeader) throw EventHubsError(fmt::format("AMQP framing: a frame of {} bytes", size));
  if (body < kFrameHeader || body > size) {
    throw EventHubsError(
        fmt::format("AMQP framing: a frame of {} bytes whose body would start at byte {}", size, body));
  }
  return std::min<std::size_t>(size, body + window_);
}

void AmqpFrameEditor::finish_head(std::string_view head, std::string& out) {
  if (head.substr(0, 4) == "AMQP") {
    out.append(head);
    return;
  }
  const Frame frame{get_u32(head, 0), static_cast<std::uint8_t>(head[5]),
                    std::size_t{static_cast<unsigned char>(head[4])} * 4};
  const std::size_t replaced = frame.size > frame.body ? edit(frame, head, out) : 0;  // else a heartbeat
  out.append(head.substr(replaced));
  rest_ = frame.size - head.size();
}

// ============================================================ BatchFormatStamp

BatchFormatStamp::BatchFormatStamp() : AmqpFrameEditor(kTransferWindow) {}

// Proton writes a transfer as handle, delivery-id, delivery-tag, message-format (further fields only on
// the frames of a delivery that continues), on every frame of a delivery: each frame of a batch is
// stamped.
std::size_t BatchFormatStamp::edit(const Frame& frame, std::string_view head, std::string& out) {
  if (frame.type != kAmqpFrameType) return 0;
  Reader reader(head, frame.body, frame.size);
  if (!is_performative(reader, kTransfer, kTransferName)) return 0;
  const std::size_t list_at = reader.at();
  const std::uint32_t count = reader.list_count();
  const std::size_t fields_at = reader.at();
  if (count < 3) return 0;  // no tag
  reader.skip();            // handle
  reader.skip();            // delivery-id
  if (!batch_tag(reader)) return 0;
  const std::size_t format_at = reader.at();
  if (count > 3) skip_format(reader);  // else the list ends with the tag, and the format is appended
  const std::size_t format_end = reader.at();

  const std::uint64_t fields = reader.end() - fields_at - (format_end - format_at) + 5;
  const std::uint32_t new_count = std::max<std::uint32_t>(count, 4);
  const bool list8 = head[list_at] == static_cast<char>(kList8) && fields + 1 <= 0xff;
  const std::uint64_t size =
      std::uint64_t{frame.size} - (format_end - list_at) + (list8 ? 3 : 9) + (format_at - fields_at) + 5;
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    throw EventHubsError("AMQP framing: a batch's transfer frame would outgrow 4 GB once stamped");
  }
  put_u32(out, static_cast<std::uint32_t>(size));
  out.append(head.substr(4, list_at - 4));  // the rest of the frame header, the descriptor
  if (list8) {
    put_byte(out, kList8);
    put_byte(out, static_cast<unsigned char>(fields + 1));
    put_byte(out, static_cast<unsigned char>(new_count));
  } else {
    put_byte(out, kList32);
    put_u32(out, static_cast<std::uint32_t>(fields + 4));
    put_u32(out, new_count);
  }
  out.append(head.substr(fields_at, format_at - fields_at));  // handle, delivery-id, delivery-tag
  put_byte(out, kUint);
  put_u32(out, kBatchMessageFormat);
  return format_end;
}

// ============================================================ MaxFrameHeadroom

MaxFrameHeadroom::MaxFrameHeadroom() : AmqpFrameEditor(kOpenWindow) {}

std::size_t MaxFrameHeadroom::edit(const Frame& frame, std::string_view head, std::string& out) {
  if (frame.type != kAmqpFrameType) return 0;  // SASL
  pass_the_rest();
  Reader reader(head, frame.body, frame.size);
  if (!is_performative(reader, kOpen, kOpenName)) {
    throw EventHubsError("AMQP framing: the service's first AMQP frame is not an open");
  }
  if (reader.list_count() < 3) return 0;  // no max-frame-size: no limit
  reader.skip();                          // container-id
  reader.skip();                          // hostname
  // Any limit over 255 is written as a uint32; a smaller one is below the minimum, and null is no limit.
  if (reader.byte() != kUint) return 0;
  const std::size_t value_at = reader.at();
  const std::uint32_t limit = reader.u32();
  if (limit < kMinMaxFrameSize + kBatchStampGrowth) return 0;  // it cannot go below the minimum
  out.append(head.substr(0, value_at));
  put_u32(out, limit - kBatchStampGrowth);
  return value_at + 4;
}

}  // namespace connector
