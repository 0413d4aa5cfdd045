#include "event_recorder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "core/json_writer.hpp"

namespace connector {

namespace {

constexpr std::size_t kWriteThreshold = 1 << 20;  // write through once this much is buffered

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
    // Binary values are always base64 (listed in binary_properties), so a reader never has to guess.
    const bool as_base64 = event.binary_properties.count(name) != 0 || !is_valid_utf8(value);
    append_json_string(out, as_base64 ? base64_encode(value) : value);
  }
  out += '}';
  if (!event.binary_properties.empty()) {
    out += ",\"binary_properties\":[";
    first = true;
    for (const auto& name : event.binary_properties) {
      if (!first) out.push_back(',');
      first = false;
      append_json_string(out, is_valid_utf8(name) ? name : base64_encode(name));
    }
    out += ']';
  }
  out += ",\"body\":";
  if (is_valid_utf8(event.body)) {
    append_json_string(out, event.body);
  } else {
    out += "null";
  }
  out += ",\"body_base64\":\"";
  out += base64_encode(event.body);
  out += "\",\"body_kind\":";
  append_json_string(out, event.body_kind);
  out += ",\"link\":";
  append_json_string(out, is_valid_utf8(event.link) ? event.link : base64_encode(event.link));
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
