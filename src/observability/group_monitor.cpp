#include "observability/group_monitor.hpp"

#include <algorithm>

#include "common/errors.hpp"
#include "observability/metrics.hpp"

namespace connector {
namespace {
/// The value after `key` in a RESP2 flat map ([k1, v1, k2, v2, …]); a nil view when absent.
RedisReplyView map_value(RedisReplyView map, std::string_view key) {
  for (std::size_t i = 0; i + 1 < map.size(); i += 2) {
    if (map[i].str() == key) return map[i + 1];
  }
  return RedisReplyView();
}
}  // namespace

GroupStatus parse_group_status(RedisReplyView groups, RedisReplyView pending, std::string_view group,
                               std::int64_t now_ms) {
  GroupStatus status;
  status.polled = true;
  status.redis_up = true;
  if (groups.is_error()) {
    // "ERR no such key": the stream (and so the group) does not exist.
    status.error = "XINFO GROUPS: " + std::string(groups.str());
    return status;
  }
  if (!groups.is_array()) {
    status.error = "XINFO GROUPS: unexpected reply " + groups.describe();
    return status;
  }
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const RedisReplyView entry = groups[i];
    if (map_value(entry, "name").str() != group) continue;
    status.group_exists = true;
    if (const RedisReplyView lag = map_value(entry, "lag"); lag.is_integer()) status.lag = lag.integer();
    if (const RedisReplyView count = map_value(entry, "pending"); count.is_integer())
      status.pending = count.integer();
  }
  if (!status.group_exists) {
    status.error = "consumer group '" + std::string(group) + "' does not exist";
    return status;
  }
  // XPENDING summary: [count, smallest-id | nil, greatest-id | nil, consumers | nil].
  if (pending.is_array() && pending.size() >= 2 && pending[0].is_integer()) {
    status.pending = pending[0].integer();
    if (pending[1].is_string()) {
      const std::int64_t oldest = entry_id_millis(pending[1].str());
      if (oldest > 0)
        status.oldest_pending_age_seconds =
            static_cast<double>(std::max<std::int64_t>(0, now_ms - oldest)) / 1000.0;
    }
  }
  return status;
}

GroupMonitor::GroupMonitor(RedisConnectionOptions redis, std::string stream_key, std::string group,
                           std::chrono::milliseconds interval)
    : connection_([&] {
        if (!redis.client_name.empty()) redis.client_name += ":monitor";
        // A poll must never take longer than a few intervals, or the values go stale unnoticed.
        redis.connect_timeout = std::min(redis.connect_timeout, std::chrono::milliseconds(3000));
        redis.command_timeout = std::min(redis.command_timeout, std::chrono::milliseconds(3000));
        return redis;
      }()),
      stream_key_(std::move(stream_key)),
      group_(std::move(group)),
      task_(interval, PeriodicTask::First::AtOnce, [this] {
        GroupStatus polled = poll();
        std::lock_guard lock(mutex_);
        status_ = std::move(polled);
      }) {}

GroupMonitor::~GroupMonitor() { stop(); }

void GroupMonitor::start() { task_.start(); }

void GroupMonitor::stop() {
  task_.request_stop();
  connection_.interrupt();  // a poll waiting on Redis ends at once
  task_.join();
}

GroupStatus GroupMonitor::status() const {
  std::lock_guard lock(mutex_);
  return status_;
}

GroupStatus GroupMonitor::poll() {
  try {
    if (!connection_.connected()) connection_.connect();
    connection_.append({"XINFO", "GROUPS", stream_key_});
    connection_.append({"XPENDING", stream_key_, group_});
    const RedisReply groups = connection_.read_reply();
    const RedisReply pending = connection_.read_reply();
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    return parse_group_status(groups, pending, group_, now_ms);
  } catch (const ConnectorError& error) {
    connection_.close();
    GroupStatus status;
    status.polled = true;
    status.error = error.what();
    return status;
  }
}

}  // namespace connector
