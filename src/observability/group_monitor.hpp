#pragma once
// Consumer-group lag and pending entries, polled from Redis on a connection of its own.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "observability/periodic_task.hpp"
#include "redis/redis_connection.hpp"

namespace connector {

/// What the last poll learned. `lag` is empty when Redis cannot compute it (nil in XINFO GROUPS,
/// after deletions or some AOF reloads) or when the group is missing: unknown, never a guess.
struct GroupStatus {
  bool polled = false;        // a poll has finished (successfully or not)
  bool redis_up = false;      // the last poll got its replies
  bool group_exists = false;  // the group was listed by XINFO GROUPS
  std::optional<std::int64_t> lag{};
  std::int64_t pending = 0;
  std::optional<double> oldest_pending_age_seconds{};  // empty when nothing is pending
  std::string error{};                                 // why redis_up or group_exists is false
};

/// Builds a GroupStatus from the replies of `XINFO GROUPS key` and `XPENDING key group` (summary
/// form); `now_ms` is Unix milliseconds. Never trusts the shapes: anything unexpected leaves the
/// field unknown and says so in `error`.
GroupStatus parse_group_status(RedisReplyView groups, RedisReplyView pending, std::string_view group,
                               std::int64_t now_ms);

/// Polls the group every `interval` on its own thread with one round trip (XINFO
/// GROUPS and XPENDING pipelined). status() may be called from any thread.
class GroupMonitor {
 public:
  GroupMonitor(RedisConnectionOptions redis, std::string stream_key, std::string group,
               std::chrono::milliseconds interval);
  ~GroupMonitor();
  GroupMonitor(const GroupMonitor&) = delete;
  GroupMonitor& operator=(const GroupMonitor&) = delete;

  void start();
  void stop();
  GroupStatus status() const;

 private:
  GroupStatus poll();

  RedisConnection connection_;  // the task's thread only (interrupt() aside)
  const std::string stream_key_;
  const std::string group_;
  mutable std::mutex mutex_;  // guards status_
  GroupStatus status_;
  PeriodicTask task_;  // last: stopped before the members it uses go
};

}  // namespace connector
