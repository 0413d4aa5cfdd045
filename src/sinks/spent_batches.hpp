#pragma once
// Batches an output is done with, kept so that the next batches are encoded into their events.
#include <cstddef>
#include <vector>

#include "common/thread_annotations.hpp"
#include "core/event.hpp"

namespace connector {

/// A few batches a sink has finished with (every event reported, none on the wire), handed back to the
/// pipeline through Sink::spare_batch(). Their events' strings keep their capacity, so encoding the next
/// batch into them allocates next to nothing, and the reader no longer allocates memory that the
/// output's thread then frees: together that was about a tenth of the connector's CPU on the Event Hubs
/// path. Holds at most `max_batches` batches and `max_bytes` of heap capacity (bytes_of()); a batch that
/// does not fit is freed as before. Thread-safe.
class SpentBatches {
 public:
  static constexpr std::size_t kDefaultMaxBatches = 4;
  static constexpr std::size_t kDefaultMaxBytes = 8 * 1024 * 1024;

  explicit SpentBatches(std::size_t max_batches = kDefaultMaxBatches, std::size_t max_bytes = kDefaultMaxBytes);
  SpentBatches(const SpentBatches&) = delete;
  SpentBatches& operator=(const SpentBatches&) = delete;

  /// Keeps `batch` if it fits, else frees it here.
  void give(Batch batch) EXCLUDES(mutex_);
  /// The batch given last, or an empty one when none is kept.
  Batch take() EXCLUDES(mutex_);

  std::size_t batches() const EXCLUDES(mutex_);
  /// Heap capacity of the batches kept (bytes_of() each): what they hold on to.
  std::size_t bytes() const EXCLUDES(mutex_);

  /// Heap capacity `batch` holds: its event array, the strings' (the inline room of short strings
  /// excluded) and the property lists that outgrew their inline slots.
  static std::size_t bytes_of(const Batch& batch);

 private:
  struct Kept {
    Batch batch;
    std::size_t bytes = 0;
  };

  const std::size_t max_batches_;
  const std::size_t max_bytes_;
  mutable Mutex mutex_;
  std::vector<Kept> kept_ GUARDED_BY(mutex_);
  std::size_t bytes_ GUARDED_BY(mutex_) = 0;
};

}  // namespace connector
