#include "observability/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace connector {
namespace {
std::int64_t steady_millis() noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double seconds) noexcept {
  if (!(seconds >= 0)) seconds = 0;  // a clock step back, or NaN: count it in the lowest bucket
  const auto bucket =
      static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(std::llround(seconds * 1e9)), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snapshot;
  snapshot.bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snapshot.cumulative.push_back(running);
  }
  snapshot.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return snapshot;
}

std::string_view label(DeadLetterReason reason) {
  switch (reason) {
    case DeadLetterReason::MaxDeliveries:
      return "max_deliveries";
    case DeadLetterReason::TooLarge:
      return "too_large";
    case DeadLetterReason::Unencodable:
      return "unencodable";
    case DeadLetterReason::Rejected:
      return "rejected";
    case DeadLetterReason::Count:
      break;
  }
  return "unknown";
}

std::string_view label(RetryCause cause) {
  switch (cause) {
    case RetryCause::Busy:
      return "busy";
    case RetryCause::Timeout:
      return "timeout";
    case RetryCause::Connection:
      return "connection";
    case RetryCause::Rejected:
      return "rejected";
    case RetryCause::Count:
      break;
  }
  return "unknown";
}

DeadLetterReason dead_letter_reason(Cause cause) noexcept {
  switch (cause) {
    case Cause::MaxDeliveries:
      return DeadLetterReason::MaxDeliveries;
    case Cause::TooLarge:
      return DeadLetterReason::TooLarge;
    case Cause::Unencodable:
      return DeadLetterReason::Unencodable;
    case Cause::None:
    case Cause::ServerBusy:
    case Cause::Timeout:
    case Cause::Connection:
    case Cause::Rejected:
    case Cause::Io:
      break;
  }
  return DeadLetterReason::Rejected;
}

RetryCause retry_cause(Cause cause) noexcept {
  switch (cause) {
    case Cause::ServerBusy:
      return RetryCause::Busy;
    case Cause::Timeout:
      return RetryCause::Timeout;
    case Cause::Connection:
      return RetryCause::Connection;
    case Cause::None:
    case Cause::Rejected:
    case Cause::TooLarge:
    case Cause::Unencodable:
    case Cause::MaxDeliveries:
    case Cause::Io:
      break;
  }
  return RetryCause::Rejected;
}

void Heartbeat::beat() noexcept {
  parked_.store(false, std::memory_order_relaxed);
  last_ms_.store(steady_millis(), std::memory_order_relaxed);
}

void Heartbeat::park() noexcept {
  parked_.store(true, std::memory_order_relaxed);
  last_ms_.store(steady_millis(), std::memory_order_relaxed);
}

Metrics::Metrics()
    : batch_duration({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}),
      end_to_end_latency(
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}) {}

void Metrics::observe_acked(std::span<const std::string_view> entry_ids) noexcept {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& id : entry_ids) {
    const std::int64_t at = entry_id_millis(id);
    // IDs set by a client (not "*") may carry any number; only plausible times are measured.
    if (at > 0 && at <= now_ms) end_to_end_latency.observe(static_cast<double>(now_ms - at) / 1000.0);
  }
}

void Metrics::set_token_expiry(std::chrono::system_clock::time_point expiry) noexcept {
  eventhubs_token_expiry_unix_s.store(
      std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count(),
      std::memory_order_relaxed);
}

std::uint64_t Metrics::dead_lettered_total() const {
  std::uint64_t total = 0;
  for (const auto& counter : dead_lettered_by_reason) total += counter.value();
  return total;
}

std::uint64_t Metrics::retried_total() const {
  std::uint64_t total = 0;
  for (const auto& counter : retried_by_cause) total += counter.value();
  return total;
}

Metrics& metrics() {
  static Metrics instance;
  return instance;
}

std::int64_t entry_id_millis(std::string_view id) noexcept {
  std::int64_t millis = 0;
  const auto end = id.data() + std::min(id.find('-'), id.size());
  const auto [ptr, ec] = std::from_chars(id.data(), end, millis);
  return ec == std::errc{} && ptr == end ? millis : 0;
}

}  // namespace connector
