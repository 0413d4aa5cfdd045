#include "common/backoff.hpp"

#include <algorithm>

namespace connector {

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap, std::uint64_t seed)
    : base_(std::max(base, std::chrono::milliseconds(1))), cap_(std::max(cap, base_)), random_(seed) {}

std::chrono::milliseconds backoff_delay(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                                        unsigned n, double unit) {
  base = std::max(base, std::chrono::milliseconds(1));
  cap = std::max(cap, base);
  // 2^n overflows nothing: the shift stops at 30 and the cap applies long before that matters.
  const unsigned shift = std::min(n, 30u);
  const double exponential = std::min(static_cast<double>(base.count()) * static_cast<double>(1u << shift),
                                      static_cast<double>(cap.count()));
  const double jittered = exponential * (0.8 + 0.4 * unit);
  return std::chrono::milliseconds(
      std::clamp(static_cast<long long>(jittered), 1LL, static_cast<long long>(cap.count())));
}

std::chrono::milliseconds Backoff::next() { return backoff_delay(base_, cap_, attempt_++, unit_random()); }

double Backoff::unit_random() { return std::uniform_real_distribution<double>(0.0, 1.0)(random_); }

}  // namespace connector
