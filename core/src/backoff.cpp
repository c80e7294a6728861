#include "drover/core/backoff.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>

namespace drover::core {

duration backoff_delay(const backoff_policy& policy, std::uint32_t next_attempt, double random_unit) {
  assert(policy.valid());
  assert(next_attempt >= 2);
  assert(random_unit >= 0.0 && random_unit < 1.0);
  const double exponent = static_cast<double>(next_attempt - 2);
  // Computed in double so a large exponent saturates at max instead of overflowing.
  const double base_ns = static_cast<double>(policy.initial.count()) * std::pow(policy.multiplier, exponent);
  const double capped_ns = std::min(base_ns, static_cast<double>(policy.max.count()));
  const double jittered_ns = capped_ns * (1.0 - policy.jitter * random_unit);
  const auto delay = duration{static_cast<std::int64_t>(jittered_ns)};
  assert(delay.count() >= 0 && delay <= policy.max);
  return delay;
}

}  // namespace drover::core
