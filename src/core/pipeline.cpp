#include "core/pipeline.hpp"

#include <fmt/format.h>
#include <pthread.h>

#include <algorithm>

#include "common/errors.hpp"
#include "common/startup_attempts.hpp"
#include "config/config.hpp"
#include "observability/logger.hpp"
#include "observability/metrics.hpp"

namespace connector {
namespace {
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// stop() lets a reader's Redis call run this long before it interrupts it: enough for a read whose batch
// is on the wire (a round trip, even across regions), short enough that an idle connector, blocked in
// XREADGROUP BLOCK on an empty stream, stops at once.
constexpr milliseconds kReaderSettle{250};

milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
}
}  // namespace

Pipeline::Pipeline(PipelineOptions options, StreamSource& reader, StreamSource& acker, Encoder encoder,
                   Sink& sink, Metrics& metrics)
    : shared_(std::move(options), std::move(encoder), sink, metrics), reader_(shared_, reader), acker_(shared_, acker) {}

Pipeline::~Pipeline() { stop(); }

bool Pipeline::running() const { return shared_.running(); }

void Pipeline::start() {
  shared_.sink.start();
  try {
    const auto pause = std::min(shared_.options.retry_delay, kStartupAttemptPause);
    reader_.session().connect_at_startup(shared_.options.startup_connect_attempts, pause);
    acker_.session().connect_at_startup(shared_.options.startup_connect_attempts, pause);
  } catch (...) {
    reader_.session()->close();
    acker_.session()->close();
    shared_.sink.stop(shared_.options.shutdown_grace);  // nothing was sent: it stops at once
    throw;
  }
  {
    MutexLock lock(shared_.mutex);
    shared_.state = PipelineLifecycle::Running;
    shared_.claims.start(Clock::now());
  }
  acker_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "acker");
    acker_.run();
  });
  reader_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "reader");
    reader_.run();
  });
}

std::optional<PipelineFailure> Pipeline::fatal_error() const {
  MutexLock lock(shared_.mutex);
  return shared_.fatal_error;
}

PipelineStats Pipeline::stats() const {
  PipelineStats stats;
  stats.read = shared_.metrics.entries_read.value();
  stats.claimed = shared_.metrics.entries_claimed.value();
  stats.claim_scans = shared_.metrics.claim_scans.value();
  stats.sent = shared_.metrics.events_sent.value();
  stats.acked = shared_.metrics.entries_acked.value();
  stats.retried = shared_.metrics.retried_total();
  stats.dead_lettered = shared_.metrics.dead_lettered_total();
  stats.deleted_acked = shared_.metrics.entries_deleted_acked.value();
  stats.redis_reconnects = shared_.metrics.redis_reconnects.value();
  MutexLock lock(shared_.mutex);
  stats.in_flight_events = shared_.ledger.outstanding_events();
  stats.in_flight_batches = shared_.ledger.batches();
  return stats;
}

bool Pipeline::drained() const {
  return shared_.ledger.drained() && shared_.completions.empty();
}

// Running → Draining, once: false when never started, or when another stop() is under way or done.
bool Pipeline::begin_draining() {
  MutexLock lock(shared_.mutex);
  if (shared_.state != PipelineLifecycle::Running) return false;
  shared_.state = PipelineLifecycle::Draining;
  return true;
}

// The reader finishes what it is doing, so that a batch Redis has already delivered is handed on instead
// of being cut off on the wire. False when it is to be interrupted: a Redis call that has run for
// kReaderSettle waits on an empty stream (BLOCK) or on a server that does not answer; and at the deadline,
// whatever it does. A read-ahead's reply (asked without BLOCK) is waited for until the deadline.
bool Pipeline::wait_for_reader(Clock::time_point deadline) {
  MutexLock lock(shared_.mutex);
  while (!shared_.reader_finished) {
    auto until = deadline;
    if (shared_.reader_call_since && !shared_.read_ahead_outstanding) until = std::min(until, *shared_.reader_call_since + kReaderSettle);
    if (Clock::now() >= until) return false;
    shared_.mutex.wait_until(shared_.progress, until);
  }
  return true;
}

// Returns how many events are still with the sink at the deadline.
std::size_t Pipeline::wait_until_drained(Clock::time_point deadline) {
  MutexLock lock(shared_.mutex);
  while (!drained()) {
    if (!shared_.mutex.wait_until(shared_.progress, deadline)) break;
  }
  return shared_.ledger.outstanding_events();
}

void Pipeline::stop() {
  const auto deadline = Clock::now() + shared_.options.shutdown_grace;
  if (!begin_draining()) return;
  shared_.reader_wakeup.notify_all();
  shared_.acker_wakeup.notify_all();
  if (!wait_for_reader(deadline)) reader_.session()->interrupt();
  if (reader_thread_.joinable()) reader_thread_.join();

  const std::size_t left_with_sink = wait_until_drained(deadline);
  // What the sink reports while it stops is still acked: the acker runs until Closing.
  shared_.sink.stop(left_until(deadline));
  {
    MutexLock lock(shared_.mutex);
    shared_.state = PipelineLifecycle::Closing;
  }
  shared_.acker_wakeup.notify_all();
  if (acker_thread_.joinable()) acker_thread_.join();
  reader_.session()->close();
  acker_.session()->close();

  MutexLock lock(shared_.mutex);
  logger().info("pipeline_stopped", {{"left_with_output_at_grace", left_with_sink},
                                     {"unacked_left_pending", shared_.ledger.unresolved()},
                                     {"acked", shared_.metrics.entries_acked.value()},
                                     {"dead_lettered", shared_.metrics.dead_lettered_total()}});
}

}  // namespace connector
