#include "sinks/spent_batches.hpp"

#include <string>
#include <utility>

namespace connector {
namespace {

/// What a std::string holds without the heap: capacity beyond it is an allocation.
const std::size_t kInlineCapacity = std::string().capacity();

std::size_t heap_bytes(const std::string& text) {
  return text.capacity() > kInlineCapacity ? text.capacity() + 1 : 0;
}

}  // namespace

SpentBatches::SpentBatches(std::size_t max_batches, std::size_t max_bytes)
    : max_batches_(max_batches), max_bytes_(max_bytes) {}

std::size_t SpentBatches::bytes_of(const Batch& batch) {
  std::size_t bytes = batch.capacity() * sizeof(Event);
  for (const Event& event : batch) {
    bytes += heap_bytes(event.entry_id) + heap_bytes(event.body) + heap_bytes(event.partition_key);
    for (const auto& [name, value] : event.properties) bytes += heap_bytes(name) + heap_bytes(value);
    // A raw-body mapping of many fields outgrows the inline slots: the properties then live on the heap.
    using Properties = decltype(event.properties);
    if (event.properties.capacity() > Properties::static_capacity) {
      bytes += event.properties.capacity() * sizeof(Properties::value_type);
    }
  }
  return bytes;
}

void SpentBatches::give(Batch batch) {
  if (batch.empty()) return;
  const std::size_t bytes = bytes_of(batch);
  {
    MutexLock lock(mutex_);
    if (kept_.size() < max_batches_ && bytes_ + bytes <= max_bytes_) {
      kept_.push_back(Kept{std::move(batch), bytes});
      bytes_ += bytes;
      return;
    }
  }
  // Does not fit: `batch` is freed on leaving, outside the lock.
}

Batch SpentBatches::take() {
  MutexLock lock(mutex_);
  if (kept_.empty()) return {};
  Kept last = std::move(kept_.back());
  kept_.pop_back();
  bytes_ -= last.bytes;
  return std::move(last.batch);
}

std::size_t SpentBatches::batches() const {
  MutexLock lock(mutex_);
  return kept_.size();
}

std::size_t SpentBatches::bytes() const {
  MutexLock lock(mutex_);
  return bytes_;
}

}  // namespace connector
