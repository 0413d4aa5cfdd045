#include "event_recorder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace connector {

namespace {

constexpr std::size_t kWriteThreshold = 1 << 20;  // write through once this much is buffered

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (byte < 0x20) {
          out += "\\u00";
          out.push_back(kHex[byte >> 4]);
          out.push_back(kHex[byte & 0x0F]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

// Text that is not UTF-8 must not reach the JSON line raw; its bytes are in body_base64 anyway.
void append_json_text_or_null(std::string& out, const std::optional<std::string>& text) {
  if (text && is_valid_utf8(*text)) {
    append_json_string(out, *text);
  } else {
    out += "null";
  }
}

std::uint64_t count_lines(int fd) {
  std::uint64_t lines = 0;
  char chunk[65536];
  off_t offset = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, chunk, sizeof chunk, offset);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) lines += chunk[i] == '\n';
    offset += n;
  }
  return lines;
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t code = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code = c & 0x07;
    } else {
      return false;
    }
    if (i + length > n) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr std::uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kMinimum[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16 |
                            static_cast<unsigned char>(bytes[i + 1]) << 8 |
                            static_cast<unsigned char>(bytes[i + 2]);
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(kAlphabet[(v >> 6) & 0x3F]);
    out.push_back(kAlphabet[v & 0x3F]);
  }
  if (const std::size_t rest = bytes.size() - i; rest > 0) {
    std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[v >> 18]);
    out.push_back(kAlphabet[(v >> 12) & 0x3F]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 0x3F] : '=');
    out.push_back('=');
  }
  return out;
}

EventRecorder::EventRecorder(const std::string& path) {
  if (path.empty()) return;
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw std::runtime_error("cannot open record file " + path + ": " + std::strerror(errno));
  next_seq_ = count_lines(fd_) + 1;
  buffer_.reserve(kWriteThreshold + 65536);
}

EventRecorder::~EventRecorder() {
  flush();
  if (fd_ >= 0) ::close(fd_);
}

void EventRecorder::record(const EventRecord& event) {
  if (fd_ < 0) {
    ++next_seq_;
    return;
  }
  std::string& out = buffer_;
  out += "{\"seq\":";
  out += std::to_string(next_seq_++);
  out += ",\"partition\":";
  append_json_string(out, event.partition);
  out += ",\"partition_key\":";
  append_json_text_or_null(out, event.partition_key);
  out += ",\"message_id\":";
  append_json_text_or_null(out, event.message_id);
  out += ",\"content_type\":";
  append_json_text_or_null(out, event.content_type);
  out += ",\"properties\":{";
  bool first = true;
  for (const auto& [name, value] : event.properties) {
    if (!first) out.push_back(',');
    first = false;
    append_json_string(out, is_valid_utf8(name) ? name : base64_encode(name));
    out.push_back(':');
    append_json_string(out, is_valid_utf8(value) ? value : base64_encode(value));
  }
  out += "},\"body\":";
  if (is_valid_utf8(event.body)) {
    append_json_string(out, event.body);
  } else {
    out += "null";
  }
  out += ",\"body_base64\":\"";
  out += base64_encode(event.body);
  out += "\",\"body_kind\":";
  append_json_string(out, event.body_kind);
  out += "}\n";
  if (buffer_.size() >= kWriteThreshold) flush();
}

bool EventRecorder::flush() {
  if (fd_ < 0 || buffer_.empty()) return true;
  std::size_t written = 0;
  while (written < buffer_.size()) {
    const ssize_t n = ::write(fd_, buffer_.data() + written, buffer_.size() - written);
    if (n < 0) {
      if (errno == EINTR) continue;
      buffer_.erase(0, written);
      return false;
    }
    written += static_cast<std::size_t>(n);
  }
  buffer_.clear();
  return true;
}

}  // namespace connector
