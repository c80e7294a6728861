#pragma once
// Scheduler time. core/ never reads a clock: every operation that needs the
// time takes a time_point argument, so the simulator can hand in virtual time.
#include <chrono>
#include <cstdint>

namespace drover::core {

/// A clock type with no now(): it only names the epoch and unit of the
/// time points the outer layers pass in (nanoseconds of a steady clock).
struct sched_clock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<sched_clock>;
  static constexpr bool is_steady = true;
};

using duration = sched_clock::duration;
using time_point = sched_clock::time_point;

constexpr time_point time_zero{};
constexpr time_point time_never = time_point::max();

inline constexpr time_point at_ns(std::int64_t ns) { return time_point{duration{ns}}; }

}  // namespace drover::core
