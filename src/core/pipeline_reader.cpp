#include "core/pipeline_reader.hpp"

#include "observability/logger.hpp"

namespace connector {

using std::chrono::milliseconds;

void PipelineReader::ReadPosition::restart_own_pending() {
  own_pending = true;
  pending_cursor.assign(1, '0');  // not = "0": GCC 12's -Wrestrict false positive at -O3 (GCC bug 105651)
}

// Own pending entries first (ID 0, then after the last one seen), then new ones (">"). After a
// reconnect or a lost group, the pending list is read again: a reply lost with the connection left
// entries there.
void PipelineReader::run() {
  ReadPosition position;
  unsigned failures = 0;
  try {
    while (wait_for_capacity()) {
      const auto failure = try_redis([&] { read_and_dispatch(position); });
      if (!failure) {
        failures = 0;
        continue;
      }
      if (!shared_.running()) break;
      recover_reader(*failure, position, failures);
    }
    send_delivered_read_ahead();
  } catch (const std::exception& error) {
    shared_.record_fatal(error, "reader");
  }
  MutexLock lock(shared_.mutex);
  shared_.reader_finished = true;
  shared_.progress.notify_all();
}

// Stopping: the batch a read-ahead made Redis deliver to this consumer is sent like any other, so that
// a graceful stop leaves nothing delivered here and unsent (stop() does not interrupt a reader that has
// a read-ahead to take). Reads nothing new.
void PipelineReader::send_delivered_read_ahead() {
  if (!session_->read_ahead_outstanding()) return;
  const auto failure = try_redis([&] {
    std::vector<StreamEntry> entries;
    {
      const ReaderCall call(*this, /*stopping=*/true);
      entries = session_->take_delivered_read_ahead(shared_.options.batch_size);
    }
    if (!entries.empty()) shared_.dispatch(std::move(entries), EntrySource::New);
  });
  if (failure) {
    logger().warn("read_ahead_left_pending", {{"error", failure->message}});
  }
}

// Read ahead only with room for the batch just read and the next one: what Redis has delivered to this
// consumer stays within MAX_IN_FLIGHT_BATCHES x BATCH_SIZE, and the next batch is dispatched as soon
// as it is read, without waiting for capacity (and idling towards another instance's claim). Asked when
// a full batch has come in, and marked under the same lock as the lifecycle: either stop() came first
// and nothing is sent, or it finds the read-ahead marked and lets the reader take it.
bool PipelineReader::grant_read_ahead() {
  MutexLock lock(shared_.mutex);
  if (shared_.state != PipelineLifecycle::Running || !shared_.has_room_for_batches(2)) return false;
  shared_.read_ahead_outstanding = true;
  return true;
}

bool PipelineReader::may_read() const {
  return shared_.state != PipelineLifecycle::Running || shared_.has_room_for_batches(1);
}

// Waits while MAX_IN_FLIGHT_BATCHES are with the sink; false once the pipeline stops running.
bool PipelineReader::wait_for_capacity() {
  shared_.metrics.reader_heartbeat.park();
  bool go_on = false;
  std::vector<std::vector<StreamEntry>> ended;  // freed on leaving, outside the lock
  {
    MutexLock lock(shared_.mutex);
    shared_.read_ahead_outstanding = session_->read_ahead_outstanding();
    while (!may_read()) shared_.mutex.wait(shared_.reader_wakeup);
    ended = shared_.ledger.take_ended_entries();
    go_on = shared_.state == PipelineLifecycle::Running;
  }
  shared_.metrics.reader_heartbeat.beat();
  return go_on;
}

// The reader's back-off wait: stop() ends it early.
void PipelineReader::sleep_unless_stopping(milliseconds delay) {
  const auto deadline = Clock::now() + delay;
  MutexLock lock(shared_.mutex);
  while (shared_.state == PipelineLifecycle::Running) {
    if (!shared_.mutex.wait_until(shared_.reader_wakeup, deadline)) return;
  }
}

void PipelineReader::read_and_dispatch(ReadPosition& position) {
  std::vector<StreamEntry> entries;
  EntrySource source = EntrySource::New;
  {
    const ReaderCall call(*this);
    if (!call) return;
    if (!session_->connected()) {
      session_.reconnect();
      position.restart_own_pending();
      // connect() clears an interruption that stop() may have sent just before it.
      if (!shared_.running()) return;
    }
    if (position.own_pending) {
      entries = session_->read_own_pending(position.pending_cursor, shared_.options.batch_size);
      if (entries.empty()) {
        position.own_pending = false;
        logger().debug("own_pending_drained", {{"consumer", session_->options().consumer}});
        return;
      }
      position.pending_cursor = entries.back().id;
      source = EntrySource::OwnPending;
    } else {
      entries = session_->read(">", shared_.options.batch_size, shared_.options.poll_timeout,
                               [this] { return grant_read_ahead(); });
    }
  }
  if (!entries.empty()) shared_.dispatch(std::move(entries), source);
}

// The error policy on the reader thread: reconnect on the next round, recreate the group and read
// again at once, or back off after a refusal.
void PipelineReader::recover_reader(const RedisFailure& failure, ReadPosition& position, unsigned& failures) {
  if (failure.action == RedisErrorAction::Reconnect) {
    session_->close();
    const auto delay = shared_.backoff(++failures);
    logger().warn("redis_reconnect", {{"role", "reader"}, {"error", failure.message}, {"retry_in_ms", delay.count()}});
    sleep_unless_stopping(delay);
    return;
  }
  std::string refusal = failure.message;
  if (failure.action == RedisErrorAction::RecreateGroup) {
    position.restart_own_pending();
    std::optional<RedisFailure> again;
    {
      const ReaderCall call(*this);
      if (!call) return;
      again = session_.recover_lost_group(failure.message);
    }
    // Recreated: read at once. Connection gone: the next round reconnects (and backs off if that fails).
    if (!again || again->action == RedisErrorAction::Reconnect) return;
    refusal = again->message;  // e.g. OOM: XGROUP CREATE is a write
  }
  const auto delay = shared_.backoff(++failures);
  logger().error("redis_read_failed", {{"error", refusal}, {"retry_in_ms", delay.count()}});
  sleep_unless_stopping(delay);
}

PipelineReader::ReaderCall::ReaderCall(PipelineReader& reader, bool stopping) : shared_(reader.shared_) {
  MutexLock lock(shared_.mutex);
  if (!stopping && shared_.state != PipelineLifecycle::Running) return;
  shared_.reader_call_since = Clock::now();
  shared_.progress.notify_all();
  entered_ = true;
}

PipelineReader::ReaderCall::~ReaderCall() {
  if (!entered_) return;
  MutexLock lock(shared_.mutex);
  shared_.reader_call_since.reset();
  shared_.progress.notify_all();
}

}  // namespace connector
