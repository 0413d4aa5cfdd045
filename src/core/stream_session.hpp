#pragma once
// One pipeline thread's StreamSource with what the thread does about its connection and its group.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
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

/// What came of a dead-letter write: per entry, the failure (empty when it moved), or a lost connection.
struct DeadLetterOutcome {
  std::vector<std::string> failures;
  std::optional<RedisFailure> lost_connection;  // set: the connection is closed and every entry is due again
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
  /// XACKs `ids`, connecting first when needed. A failure is returned after the error policy: the
  /// connection closed when it is gone, a lost group recreated (the acks stay due; XACK of an ID the
  /// recreated group never delivered does nothing).
  std::optional<RedisFailure> ack(const std::vector<std::string_view>& ids);
  /// Moves `work` to the dead-letter stream and logs each entry's outcome; a refusal by the server counts
  /// as every entry's failure (all are written again later).
  DeadLetterOutcome write_dead_letters(const std::vector<DeadLetter>& work);
  /// Records delivery counts in Redis (XCLAIM … RETRYCOUNT); best effort: a failure is only logged.
  void record_delivery_counts(const std::vector<std::pair<std::string, unsigned>>& counts);

 private:
  void recreate_lost_group(std::string_view cause);
  /// One log line per dead-letter write: moved, or left pending with the error.
  void log_dead_letters(const std::vector<DeadLetter>& work, const std::vector<std::string>& failures) const;

  StreamSource& source_;
  const char* role_;
  Counter& reconnects_;
};

}  // namespace connector
