#pragma once
// Capped exponential back-off with jitter: Event Hubs reconnects, Redis reconnects, event retries.
#include <chrono>
#include <cstdint>
#include <random>

namespace connector {

/// The delay before attempt `n` (0, 1, …): base·2ⁿ capped at `cap`, then scaled by 0.8 + 0.4·`unit`
/// (`unit` in [0, 1)) and capped again, so that many connectors that lost a service at once do not
/// come back in step.
std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                        unsigned n, double unit);

/// backoff_delay() with its own attempt counter and random generator. Not thread-safe: owned by one thread.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, std::uint64_t seed);

  /// The delay before the next attempt; counts the attempt.
  std::chrono::milliseconds next();
  /// After a success: the next delay starts from `base` again.
  void reset() noexcept { attempt_ = 0; }
  unsigned attempts() const noexcept { return attempt_; }
  /// A number in [0, 1) from the same generator (for server-busy delays).
  double unit_random();

 private:
  std::chrono::milliseconds base_;
  std::chrono::milliseconds cap_;
  unsigned attempt_ = 0;
  std::mt19937_64 random_;
};

}  // namespace connector
