#pragma once
// The record file: one JSON line per accepted event, for tests and benchmarks to read back.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace connector {

/// One accepted event as it is written to the record file.
struct EventRecord {
  std::string partition;
  std::optional<std::string> partition_key;
  std::optional<std::string> message_id;
  std::optional<std::string> content_type;
  std::map<std::string, std::string> properties;  // values as their bytes
  std::set<std::string> binary_properties;        // names whose value was AMQP binary, not string
  std::string body;                               // raw bytes
  std::string body_kind;                          // "data", "value" or "sequence"
  std::string link;                               // name of the client's sender link
};

/// Appends records to a file through an in-memory buffer: nothing is flushed per event (the caller
/// flushes on a timer and on exit), so recording does not limit throughput.
/// Not thread-safe: owned and used by the Proton container thread only.
class EventRecorder {
 public:
  /// An empty path records nothing. Appends to an existing file and continues its `seq` numbering,
  /// so a restarted server adds to what the previous one wrote. Throws std::runtime_error on I/O errors.
  explicit EventRecorder(const std::string& path);
  ~EventRecorder();
  EventRecorder(const EventRecorder&) = delete;
  EventRecorder& operator=(const EventRecorder&) = delete;

  void record(const EventRecord& event);
  /// Writes the buffer to the file; returns false (and keeps the data) when the write failed.
  bool flush();
  bool dirty() const { return !buffer_.empty(); }
  std::uint64_t recorded() const { return next_seq_ - 1; }

 private:
  int fd_ = -1;
  std::uint64_t next_seq_ = 1;
  std::string buffer_;
};

}  // namespace connector
