#pragma once
// One pipeline thread's StreamSource with what the thread does about its connection and its group.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/redis_error_policy.hpp"
#include "core/stream_source.hpp"
#include "observability/metrics.hpp"

namespace connector {

/// A page of a claim pass, and what failed.
struct ClaimPass {
  ClaimResult result;
  std::optional<RedisFailure> failure;
};

/// A StreamSource used by one thread (`role`: "reader" or "acker"), with its startup connection, its
/// reconnects, the recreation of a lost group and the log lines of each. Used through `->` for the
/// plain commands. Not thread-safe (interrupt() aside), like its source.
class StreamSession {
 public:
  StreamSession(StreamSource& source, const char* role, Counter& reconnects)
      : source_(source), role_(role), reconnects_(reconnects) {}

  StreamSource* operator->() const { return &source_; }

  /// Connects and checks the server (and, for the reader, creates the group unless it exists), at most
  /// `attempts` times, `pause` apart. Throws RedisConnectionError after the last attempt.
  void connect_at_startup(int attempts, std::chrono::milliseconds pause);
  /// Closes, connects again and recreates the group when the server lost it.
  void reconnect();
  void ensure_connected() {
    if (!source_.connected()) reconnect();
  }
  /// After RecreateGroup: recreates the group; a failure to do so is returned (with the connection
  /// closed when it is gone), and the caller backs off as after any failure.
  std::optional<RedisFailure> recover_lost_group(std::string_view cause);
  /// One page of idle entries of other consumers from `cursor`, leaving out `own` (this instance's in
  /// flight); trimmed entries found pending are acked. A failure is returned, after the error policy.
  ClaimPass claim_page(std::chrono::milliseconds min_idle, const std::string& cursor, std::size_t count,
                       const std::unordered_set<std::string_view>& own);
  /// One log line per dead-letter write: moved, or left pending with the error.
  void log_dead_letters(const std::vector<DeadLetter>& work, const std::vector<std::string>& failures) const;

 private:
  void recreate_lost_group(std::string_view cause);

  StreamSource& source_;
  const char* role_;
  Counter& reconnects_;
};

}  // namespace connector
