#pragma once
// The connector's counters, gauges and histograms (README "Metrics"). Updated on the reader,
// acker and sink threads with relaxed atomics only: no lock is ever taken on the hot path.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/cause.hpp"

namespace connector {

/// A monotonically increasing count.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A distribution over fixed upper bounds (seconds), with one atomic counter per bucket.
class Histogram {
 public:
  /// `bounds` ascending; an implicit +Inf bucket follows the last one.
  explicit Histogram(std::vector<double> bounds);
  void observe(double seconds) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<std::uint64_t> sum_ns_{0};
};

/// Why an entry went to the dead-letter stream; the label values of connector_entries_dead_lettered_total.
enum class DeadLetterReason { MaxDeliveries, TooLarge, Unencodable, Rejected, Count };
/// Why an event was sent again; the label values of connector_events_retried_total.
enum class RetryCause { Busy, Timeout, Connection, Rejected, Count };

std::string_view label(DeadLetterReason reason);
std::string_view label(RetryCause cause);
/// The one map from a Cause to each counter's label: what is not one of the other labels is "rejected".
DeadLetterReason dead_letter_reason(Cause cause) noexcept;
RetryCause retry_cause(Cause cause) noexcept;

/// Liveness of one pipeline thread: it beats once per loop turn, or parks in a wait that has no
/// deadline by design (waiting for capacity while the output is slow), which counts as alive.
class Heartbeat {
 public:
  void beat() noexcept;
  void park() noexcept;
  /// Milliseconds of the steady clock at the last beat or park; 0 before the first.
  std::int64_t last_ms() const noexcept { return last_ms_.load(std::memory_order_relaxed); }
  bool parked() const noexcept { return parked_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> last_ms_{0};
  std::atomic<bool> parked_{false};
};

/// Every metric the pipeline and the sinks update; one process-wide instance, metrics() (a test may
/// give a Pipeline its own).
struct Metrics {
  Counter entries_read;      // new entries and own pending entries read with XREADGROUP
  Counter entries_claimed;   // entries claimed from idle consumers
  Counter events_confirmed;  // Accepted outcomes reported by the output
  Counter entries_acked;     // XACKed after the output confirmed them
  Counter events_sent;            // events handed to the output, retries included
  Counter entries_deleted_acked;  // pending entries found trimmed from the stream, acked unsent
  Counter claim_scans;            // pages of the pending list scanned for idle entries
  Counter redis_reconnects;       // reconnects of either pipeline connection
  std::array<Counter, static_cast<std::size_t>(DeadLetterReason::Count)> dead_lettered_by_reason;
  std::array<Counter, static_cast<std::size_t>(RetryCause::Count)> retried_by_cause;
  Histogram batch_duration;      // a batch from read to its last entry acked or dead-lettered
  Histogram end_to_end_latency;  // ack time minus the entry ID's millisecond time
  std::atomic<std::int64_t> eventhubs_token_expiry_unix_s{0};  // 0: no token put yet
  Heartbeat reader_heartbeat;
  Heartbeat acker_heartbeat;

  Metrics();
  Counter& dead_lettered(Cause cause) {
    return dead_lettered_by_reason[static_cast<std::size_t>(dead_letter_reason(cause))];
  }
  Counter& retried(Cause cause) { return retried_by_cause[static_cast<std::size_t>(retry_cause(cause))]; }
  /// Records the end-to-end latency of entries acked now, from their IDs ("<ms>-<seq>").
  void observe_acked(std::span<const std::string_view> entry_ids) noexcept;
  void set_token_expiry(std::chrono::system_clock::time_point expiry) noexcept;

  std::uint64_t dead_lettered_total() const;
  std::uint64_t retried_total() const;
};

/// The process-wide metrics.
Metrics& metrics();

/// Milliseconds since the Unix epoch of a stream entry ID ("1700000000000-0"); 0 when it has none.
std::int64_t entry_id_millis(std::string_view id) noexcept;

}  // namespace connector
