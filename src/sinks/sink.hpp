#pragma once
// The output contract: asynchronous, exactly one outcome per event, three outcomes.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "common/cause.hpp"
#include "core/event.hpp"

namespace connector {

/// Accepted: durably taken by the output. Retry: may succeed later. Reject: can never succeed (dead-letter).
enum class Outcome { Accepted, Retry, Reject };

/// The outcome of one event of a batch, addressed by its index in that batch.
struct Completion {
  std::size_t index = 0;
  Outcome outcome = Outcome::Accepted;
  std::string reason;                        // why, for Retry and Reject; never holds a secret
  std::chrono::milliseconds retry_after{0};  // Retry: wait at least this long first (server-busy)
  Cause cause = Cause::None;                 // why, as a value: the metric labels come from it, not `reason`
};

using CompletionCallback = std::function<void(std::vector<Completion>)>;

/// An output. send() is asynchronous: every event's outcome is reported exactly once through `done`,
/// possibly over several calls, from any thread, in any order. `done` must not be called after stop().
/// One owner starts and stops a sink, once each: the Pipeline it is given (Pipeline::start/stop).
class Sink {
 public:
  virtual ~Sink() = default;
  /// Connects; throws a ConnectorError (EventHubsError, ConfigurationError...) on a fatal problem.
  virtual void start() = 0;
  virtual void send(Batch batch, CompletionCallback done) = 0;
  /// Finishes in-flight work for at most `grace` (reporting it), then closes; what is left unreported
  /// stays unacked in Redis and is redelivered later.
  virtual void stop(std::chrono::milliseconds grace) = 0;
  /// Events whose encoded size exceeds this are rejected up front.
  virtual std::size_t max_event_bytes() const = 0;
  /// True while the output can take events (connected, authorized).
  virtual bool ready() const = 0;
  /// A batch this output is done with, for the next send() to be encoded into: its events' strings keep
  /// their capacity. Empty when it has none (an output need not keep any). Any thread.
  virtual Batch spare_batch() { return {}; }
};

}  // namespace connector
