#pragma once
// Every Redis command the connector sends lives here (DESIGN.md "StreamConsumer").
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/errors.hpp"
#include "core/event.hpp"
#include "redis/redis_connection.hpp"

namespace connector {

/// The group or the stream vanished (NOGROUP): recreate the group and go on.
class NoGroupError : public RedisStreamError {
 public:
  using RedisStreamError::RedisStreamError;
};

/// How idle pending entries of other consumers are claimed.
enum class ClaimMode {
  Auto,             // XAUTOCLAIM on Redis 6.2+, else XPENDING + XCLAIM
  AutoClaim,        // XAUTOCLAIM (6.2+)
  PendingAndClaim,  // XPENDING + XCLAIM (works on 5.0+)
};

struct StreamConsumerOptions {
  std::string stream_key;
  std::string group;
  std::string consumer;
  std::string group_start_id = "$";
  std::string dead_letter_stream;
  ClaimMode claim_mode = ClaimMode::Auto;
};

struct RedisVersion {
  int major = 0, minor = 0, patch = 0;
  bool at_least(int want_major, int want_minor) const {
    return major > want_major || (major == want_major && minor >= want_minor);
  }
};

/// One page of claimed entries. `deleted_ids` were pending but trimmed from the stream: ack them.
struct ClaimResult {
  std::vector<StreamEntry> entries;
  std::vector<std::string> deleted_ids;
  std::string next_cursor = "0-0";  // "0-0" when the scan is complete
};

/// Stream and consumer-group commands over one RedisConnection. Not thread-safe: one per connection.
/// Unexpected replies throw RedisStreamError naming the command; I/O failures throw RedisConnectionError.
class StreamConsumer {
 public:
  StreamConsumer(RedisConnection& connection, StreamConsumerOptions options);

  /// INFO server → version; throws RedisStreamError below 5.0 (no streams). Remembers it for claim().
  RedisVersion check_server();
  /// Creates the group with MKSTREAM unless it exists; true when created. A key of another type is
  /// a ConfigurationError (STREAM_KEY names something that is not a stream).
  bool ensure_group();

  /// XREADGROUP … COUNT count [BLOCK ms] STREAMS key id. `id` is ">" (new) or an ID (own pending,
  /// after that ID). A nil result (timeout) is an empty vector. Throws NoGroupError on NOGROUP.
  std::vector<StreamEntry> read(std::string_view id, std::size_t count,
                                std::optional<std::chrono::milliseconds> block);
  /// Sets `deliveries` of each entry from XPENDING's extended form (entries of this consumer).
  void fill_delivery_counts(std::vector<StreamEntry>& entries);
  /// XACK in groups of at most 1000 IDs, pipelined. Returns how many were still pending.
  long long ack(const std::vector<std::string>& ids);
  /// XADD to the dead-letter stream with the original fields plus dlq-* fields, and XACK the original,
  /// in one MULTI/EXEC.
  void dead_letter(const StreamEntry& entry, std::string_view reason, unsigned deliveries);
  /// Claims up to `count` entries idle for at least `min_idle` from any consumer, starting at `cursor`.
  ClaimResult claim(std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count);

  const StreamConsumerOptions& options() const noexcept { return options_; }
  const RedisVersion& version() const noexcept { return version_; }

 private:
  RedisReply run(const std::vector<std::string_view>& argv, std::string_view what);
  ClaimResult claim_with_autoclaim(std::chrono::milliseconds min_idle, std::string_view cursor,
                                   std::size_t count);
  ClaimResult claim_with_pending(std::chrono::milliseconds min_idle, std::string_view cursor, std::size_t count);

  RedisConnection& connection_;
  StreamConsumerOptions options_;
  RedisVersion version_;
};

/// Parses [[id, [field, value, …] | nil], …] (XRANGE/XCLAIM/XAUTOCLAIM shape) into entries; nil
/// fields mark a deleted entry. Throws RedisStreamError on any other shape.
std::vector<StreamEntry> parse_entries(RedisReplyView reply, std::string_view command);

/// Parses "redis_version:7.0.15" out of an INFO reply.
std::optional<RedisVersion> parse_redis_version(std::string_view info);

}  // namespace connector
