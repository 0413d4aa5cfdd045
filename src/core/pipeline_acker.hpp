#pragma once
// A pipeline's acker thread: the sink's outcomes applied, acks and dead letters written, retries and
// claims started.
#include <chrono>
#include <optional>
#include <vector>

#include "common/thread_annotations.hpp"
#include "core/pipeline_shared.hpp"
#include "core/redis_error_policy.hpp"
#include "core/stream_session.hpp"
#include "core/stream_source.hpp"

namespace connector {

/// The loop of the acker thread over its own StreamSource (a second connection, so acks never wait
/// behind a blocking read): applies the sink's completions to the ledger, XACKs in groups, writes dead
/// letters (XADD first, XACK only for what was written), records delivery counts, resends due retries
/// and claims other consumers' idle entries. Runs until the pipeline is Closing and nothing is queued.
class PipelineAcker {
 public:
  PipelineAcker(PipelineShared& shared, StreamSource& source)
      : shared_(shared), session_(source, "acker", shared.metrics.redis_reconnects) {}
  PipelineAcker(const PipelineAcker&) = delete;
  PipelineAcker& operator=(const PipelineAcker&) = delete;

  StreamSession& session() { return session_; }
  /// The thread's body.
  void run() EXCLUDES(shared_.mutex);

 private:
  using Clock = PipelineShared::Clock;
  using EntryRef = PipelineShared::EntryRef;

  void wait_for_work() REQUIRES(shared_.mutex);
  bool has_work() const REQUIRES(shared_.mutex);
  bool sleep_unless_closing(std::chrono::milliseconds delay) REQUIRES(shared_.mutex);
  void recover(const RedisFailure& failure, unsigned failures) REQUIRES(shared_.mutex);
  void apply_completions() REQUIRES(shared_.mutex);
  /// Wakes the reader when `ended` batches freed capacity, and stop() in any case.
  void entries_resolved(std::size_t ended) REQUIRES(shared_.mutex);
  std::optional<RedisFailure> flush_redis_work() REQUIRES(shared_.mutex);
  std::optional<RedisFailure> write_dead_letters(std::vector<EntryRef> due) REQUIRES(shared_.mutex);
  void record_delivery_counts() REQUIRES(shared_.mutex);
  void resend_due_retries() REQUIRES(shared_.mutex);
  void claim_idle_entries() REQUIRES(shared_.mutex);
  void finish_claim_pass(const ClaimPass& pass) REQUIRES(shared_.mutex);

  PipelineShared& shared_;
  StreamSession session_;  // this thread's
};

}  // namespace connector
