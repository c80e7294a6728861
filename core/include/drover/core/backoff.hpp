#pragma once
// Exponential backoff with jitter between attempts. Pure: the random draw is
// handed in, so the same seed gives the same delays.
#include <cstdint>

#include "drover/core/rng.hpp"
#include "drover/core/time.hpp"

namespace drover::core {

struct backoff_policy {
  duration initial = std::chrono::milliseconds(100);
  duration max = std::chrono::seconds(60);
  double multiplier = 2.0;
  /// Fraction of the delay that is randomised away: 0 = none, 1 = "full jitter".
  double jitter = 0.2;

  bool valid() const {
    return initial.count() >= 0 && max >= initial && multiplier >= 1.0 && jitter >= 0.0 && jitter <= 1.0;
  }
};

/// Delay before attempt `next_attempt` (>= 2) after a retryable failure:
/// min(max, initial * multiplier^(next_attempt - 2)), minus up to
/// jitter * that, drawn from `random_unit` in [0, 1).
duration backoff_delay(const backoff_policy& policy, std::uint32_t next_attempt, double random_unit);

inline duration backoff_delay(const backoff_policy& policy, std::uint32_t next_attempt, rng& random) {
  return backoff_delay(policy, next_attempt, random.uniform01());
}

}  // namespace drover::core
