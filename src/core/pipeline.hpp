#pragma once
// The loop that reads, hands batches to the sink, tracks what is in flight, and acks.
#include <chrono>
#include <cstdint>
#include <optional>
#include <thread>

#include "common/thread_annotations.hpp"
#include "core/encoder.hpp"
#include "core/pipeline_acker.hpp"
#include "core/pipeline_reader.hpp"
#include "core/pipeline_shared.hpp"
#include "core/stream_source.hpp"
#include "observability/metrics.hpp"
#include "sinks/sink.hpp"

namespace connector {

/// The pipeline's counters (kept in its Metrics, the one set) and in-flight gauges at one moment; read
/// with Pipeline::stats() from any thread.
struct PipelineStats {
  std::uint64_t read = 0;            // entries read from the stream (new and own pending)
  std::uint64_t claimed = 0;         // entries claimed from idle consumers
  std::uint64_t claim_scans = 0;     // pages of the pending list scanned for idle entries
  std::uint64_t sent = 0;            // events handed to the sink (retries included)
  std::uint64_t acked = 0;           // entries XACKed after the sink accepted them
  std::uint64_t retried = 0;         // Retry outcomes
  std::uint64_t dead_lettered = 0;   // moved to the dead-letter stream
  std::uint64_t deleted_acked = 0;   // pending entries found trimmed from the stream, acked
  std::uint64_t redis_reconnects = 0;
  std::size_t in_flight_batches = 0;
  std::size_t in_flight_events = 0;  // with the sink, not completed yet
};

/// Moves entries from the stream to the sink and acks them once confirmed, at least once.
///
/// Ownership: the pipeline starts the sink it is given (in start()) and stops it (in stop(), within
/// shutdown_grace, after draining); nobody else starts or stops it. The caller keeps the sink alive
/// longer than the pipeline and may read it (ready(), for the probes).
///
/// Threads: a PipelineReader runs the reader thread over `reader` (the blocking XREADGROUP connection); a
/// PipelineAcker the acker thread over `acker` (XACK, dead letters, claims, on a second connection so acks
/// never wait behind a blocking read). Both sources are the caller's (PipelineStreams in production, a
/// double in tests) and outlive the pipeline. They share a PipelineShared: one lock, the lifecycle and an
/// InFlightLedger of what is in flight. Sink completions arrive on any thread and only enqueue. Both
/// threads meet Redis errors with one policy (core/redis_error_policy.hpp). Pipeline itself is the
/// lifecycle: start(), the stop protocol, the threads.
class Pipeline {
 public:
  /// Counts into `metrics` (the process-wide one unless a test gives its own).
  Pipeline(PipelineOptions options, StreamSource& reader, StreamSource& acker, Encoder encoder, Sink& sink,
           Metrics& metrics = connector::metrics());
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  /// Starts the sink, connects to Redis (startup_connect_attempts attempts), checks the server and the
  /// group, then starts the reader and acker threads. Throws what the sink's start() throws,
  /// RedisConnectionError, RedisStreamError or ConfigurationError; nothing is left running when it throws.
  void start() EXCLUDES(shared_.mutex);
  /// Stops reading, waits up to shutdown_grace for in-flight events to complete and be acked, stops
  /// the sink with what is left of the grace and closes the connections. Idempotent; unconfirmed
  /// entries stay pending in Redis.
  void stop() EXCLUDES(shared_.mutex);
  /// Set when a thread stopped for good: a ConfigurationError found while running (the same policy on
  /// both threads: main exits with status 2), or an unexpected error (a bug, never data: status 1).
  std::optional<PipelineFailure> fatal_error() const EXCLUDES(shared_.mutex);
  /// True from a successful start() until stop() begins.
  bool running() const EXCLUDES(shared_.mutex);

  PipelineStats stats() const EXCLUDES(shared_.mutex);

 private:
  using Clock = PipelineShared::Clock;

  bool begin_draining() EXCLUDES(shared_.mutex);
  bool wait_for_reader(Clock::time_point deadline) EXCLUDES(shared_.mutex);
  std::size_t wait_until_drained(Clock::time_point deadline) EXCLUDES(shared_.mutex);
  bool drained() const REQUIRES(shared_.mutex);  // nothing with the sink or waiting for Redis (retry waits aside)

  PipelineShared shared_;
  PipelineReader reader_;
  PipelineAcker acker_;
  std::thread reader_thread_;  // started by start(), joined by stop()
  std::thread acker_thread_;   // started by start(), joined by stop()
};

}  // namespace connector
