#pragma once
// The values StreamConsumer's commands take and return, apart from the consumer itself (so that
// core/stream_source.hpp can name them without the connection).
#include <string>
#include <string_view>
#include <vector>

#include "common/cause.hpp"
#include "core/event.hpp"

namespace connector {

/// An entry to move to the dead-letter stream, with why and how often it was delivered.
struct DeadLetter {
  const StreamEntry* entry = nullptr;
  std::string reason;
  unsigned deliveries = 1;  // the entry's delivery count now (retries since it was read raise it)
  Cause cause = Cause::None;  // for the metric label; not written to Redis
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
  std::string group_start_id;  // GROUP_START_ID: $, 0 or an entry ID
  std::string dead_letter_stream;
  ClaimMode claim_mode = ClaimMode::Auto;
};

struct RedisVersion {
  int major = 0, minor = 0, patch = 0;
  bool at_least(int want_major, int want_minor) const {
    return major > want_major || (major == want_major && minor >= want_minor);
  }
};

/// Where a group is created after it was lost: the oldest entry the stream still holds, so that nothing
/// the lost group had not acked is skipped (GROUP_START_ID applies only to the first creation).
inline constexpr std::string_view kRecreatedGroupStartId = "0";

/// One page of claimed entries (each with its exact delivery count). `deleted_ids` were pending but
/// trimmed from the stream: ack them.
struct ClaimResult {
  std::vector<StreamEntry> entries;
  std::vector<std::string> deleted_ids;
  std::string next_cursor = "0-0";  // "0-0" when the scan is complete
};

}  // namespace connector
