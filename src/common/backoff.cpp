#include "common/backoff.hpp"

#include <algorithm>

namespace connector {

std::chrono::milliseconds BackoffPolicy::delay(unsigned failures, double unit) const {
  const auto floor = std::max(base, std::chrono::milliseconds(1));
  const auto ceiling = std::max(cap, floor);
  // 2^n overflows nothing: the shift stops at 30 and the cap applies long before that matters.
  const unsigned shift = std::min(failures == 0 ? 0u : failures - 1, 30u);
  const double exponential = std::min(static_cast<double>(floor.count()) * static_cast<double>(1u << shift),
                                      static_cast<double>(ceiling.count()));
  const double jittered = exponential * (0.8 + 0.4 * unit);
  return std::chrono::milliseconds(
      std::clamp(static_cast<long long>(jittered), 1LL, static_cast<long long>(ceiling.count())));
}

double thread_local_jitter() {
  // One generator per thread: the reader and the acker back off at the same time without sharing one.
  thread_local std::minstd_rand random(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(random);
}

Backoff::Backoff(BackoffPolicy policy, std::uint64_t seed) : policy_(policy), random_(seed) {}

std::chrono::milliseconds Backoff::next() { return policy_.delay(++failures_, unit_random()); }

double Backoff::unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }

}  // namespace connector
