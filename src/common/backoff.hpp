#pragma once
// Capped exponential back-off with jitter: Event Hubs reconnects, Redis reconnects, event retries.
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

namespace connector {

/// How long to wait after failures in a row: the one back-off rule, as a value.
struct BackoffPolicy {
  std::chrono::milliseconds base{1};
  std::chrono::milliseconds cap{1};

  /// The wait after `failures` failures in a row (1 for the first; 0 counts as 1): base·2^(failures−1)
  /// capped at `cap`, then scaled by 0.8 + 0.4·`unit` (`unit` in [0, 1)) and capped again, so that many
  /// connectors that lost a service at once do not come back in step. A base under 1 ms counts as 1 ms,
  /// a cap under the base as the base.
  std::chrono::milliseconds delay(unsigned failures, double unit) const;
};

/// Numbers in [0, 1) for BackoffPolicy::delay(); a test passes a constant to make every delay exact.
using JitterSource = std::function<double()>;
/// The production JitterSource: callable from any thread, each of which draws from its own generator.
double thread_local_jitter();

/// A BackoffPolicy with its own count of failures and random generator. Not thread-safe: owned by one thread.
class Backoff {
 public:
  Backoff(BackoffPolicy policy, std::uint64_t seed);

  /// The delay before the next attempt; counts the failure.
  std::chrono::milliseconds next();
  /// After a success: the next delay starts from the policy's base again.
  void reset() noexcept { failures_ = 0; }
  unsigned attempts() const noexcept { return failures_; }
  /// A number in [0, 1) from the same generator (for server-busy delays).
  double unit_random();

 private:
  BackoffPolicy policy_;
  unsigned failures_ = 0;
  std::mt19937_64 random_;
};

}  // namespace connector
