#pragma once
// A pipeline's reader thread: own pending entries, then new ones, handed on within the in-flight bound.
#include <chrono>
#include <string>

#include "common/thread_annotations.hpp"
#include "core/pipeline_shared.hpp"
#include "core/redis_error_policy.hpp"
#include "core/stream_session.hpp"
#include "core/stream_source.hpp"

namespace connector {

/// The loop of the reader thread over its own StreamSource: reads its consumer's pending entries first,
/// then new ones (with one read-ahead), waits while MAX_IN_FLIGHT_BATCHES are with the sink, and meets
/// Redis errors with the one policy (reconnect, recreate the group, back off).
class PipelineReader {
 public:
  PipelineReader(PipelineShared& shared, StreamSource& source)
      : shared_(shared), session_(source, "reader", shared.metrics.redis_reconnects) {}
  PipelineReader(const PipelineReader&) = delete;
  PipelineReader& operator=(const PipelineReader&) = delete;

  /// Its session; stop() may interrupt() it from another thread.
  StreamSession& session() { return session_; }
  /// The thread's body; returns once the pipeline stops running (or a fatal error was recorded).
  void run() EXCLUDES(shared_.mutex);

 private:
  using Clock = PipelineShared::Clock;
  /// Where the reader reads next: its own pending entries (from `pending_cursor`), then new ones.
  struct ReadPosition {
    bool own_pending = true;
    std::string pending_cursor = "0";
    void restart_own_pending();
  };
  /// The reader inside a Redis call, for stop() (Pipeline::wait_for_reader()), for the scope of one of
  /// these. False once the pipeline is stopping, and then no call may be made; `stopping` enters all the same.
  class ReaderCall {
   public:
    explicit ReaderCall(PipelineReader& reader, bool stopping = false) EXCLUDES(reader.shared_.mutex);
    ~ReaderCall() EXCLUDES(shared_.mutex);
    ReaderCall(const ReaderCall&) = delete;
    ReaderCall& operator=(const ReaderCall&) = delete;
    explicit operator bool() const { return entered_; }

   private:
    PipelineShared& shared_;
    bool entered_ = false;
  };

  bool wait_for_capacity() EXCLUDES(shared_.mutex);
  bool may_read() const REQUIRES(shared_.mutex);
  bool grant_read_ahead() EXCLUDES(shared_.mutex);
  void send_delivered_read_ahead() EXCLUDES(shared_.mutex);
  void read_and_dispatch(ReadPosition& position) EXCLUDES(shared_.mutex);
  void recover_reader(const RedisFailure& failure, ReadPosition& position, unsigned& failures)
      EXCLUDES(shared_.mutex);
  void sleep_unless_stopping(std::chrono::milliseconds delay) EXCLUDES(shared_.mutex);

  PipelineShared& shared_;
  StreamSession session_;  // this thread's (interrupt() aside)
};

}  // namespace connector
