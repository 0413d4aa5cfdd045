#pragma once
// Capped exponential back-off with jitter, for reconnecting.
#include <chrono>
#include <cstdint>
#include <random>

namespace connector {

/// The n-th delay (n = 0, 1, …) is base·2ⁿ capped at `cap`, then scaled by a random factor in
/// [0.8, 1.2) (still capped) so that many connectors that lost the service at once do not come back
/// in step. Not thread-safe: owned by one thread.
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
