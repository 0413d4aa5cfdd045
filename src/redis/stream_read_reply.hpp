#pragma once
// Stream replies (XREADGROUP, XRANGE) read straight into StreamEntry values, without a reply tree.
#include <cstddef>
#include <string>
#include <vector>

#include "core/event.hpp"
#include "redis/redis_connection.hpp"

namespace connector {

/// Where a stream reply keeps its array of [id, [field, value, …]] entries.
enum class StreamReplyShape : unsigned char {
  Streams,  // XREADGROUP … STREAMS key id: [[key, [entry, …]]]
  Entries,  // XRANGE (and XCLAIM without JUSTID): the array of entries itself
};

/// One stream reply, built by hiredis's reader callbacks: each id, field name and value is copied once,
/// from the input buffer into its StreamEntry. A reply of any other shape is still consumed whole (the
/// connection stays in step) and fault() says what was wrong with it.
class StreamReadReply {
 public:
  /// `command` and `stream_key` name the reply in fault texts.
  StreamReadReply(StreamReplyShape shape, std::string command, std::string stream_key);
  StreamReadReply(const StreamReadReply&) = delete;
  StreamReadReply& operator=(const StreamReadReply&) = delete;

  /// The callbacks that read the next reply into this one; clear() it first.
  ReplyBuilder builder() noexcept;
  void clear();

  /// Nil: BLOCK ran out, or nothing was there.
  bool is_nil() const noexcept { return nil_; }
  /// The server's error reply (NOGROUP…), empty when there is none.
  const std::string& error() const noexcept { return error_; }
  /// Why this is not a reply of the expected shape, as an error text naming the command; empty when it is.
  const std::string& fault() const noexcept { return fault_; }
  /// How many entries Redis delivered (the entry array's length), as COUNT limits it.
  std::size_t delivered() const noexcept { return delivered_; }
  /// The entries read; nil items (an entry Redis cannot name) are left out, entries whose fields are
  /// nil (trimmed while pending) come marked deleted.
  std::vector<StreamEntry>& entries() noexcept { return entries_; }

 private:
  friend struct StreamReadReplyCallbacks;

  StreamReplyShape shape_;
  std::string command_;
  std::string stream_key_;
  std::vector<StreamEntry> entries_;
  std::size_t delivered_ = 0;
  std::size_t entry_position_ = 0;  // index of the current entry in the reply, nil items included
  std::size_t last_text_size_ = 0;  // bytes of names and values of the last entry read (kept across replies)
  bool nil_ = false;
  std::string error_;
  std::string fault_;
};

}  // namespace connector
