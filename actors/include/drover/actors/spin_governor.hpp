#pragma once
// How long the scheduler thread that runs the broker spins when it runs out
// of work, by the rate submissions arrive at. A thread that blocks costs a
// wake-up when the next task comes (on a VM tens of microseconds: an idle
// virtual CPU halts, and waking it takes an interrupt), so a lightly loaded
// node answers faster when its thread spins through the gaps between tasks.
// Under heavy load the spin buys nothing (the next batch is already there,
// or the gap is spent better by other processes) and only costs CPU. So:
// below `quiet_rate` tasks per second the thread spins `quiet_polls` polls,
// above it `busy_polls`. Pure logic on the caller's clock; the broker actor
// applies the decision to its CAF worker (docs/operations.md).
#include <cstddef>
#include <cstdint>
#include <optional>

#include "drover/core/time.hpp"

namespace drover::actors {

struct spin_policy {
  std::size_t quiet_polls = 0;  // spin while submissions are rarer than quiet_rate
  std::size_t busy_polls = 0;   // spin at or above it
  double quiet_rate = 0;        // tasks per second
  core::duration window = std::chrono::milliseconds(50);  // the rate is measured over this
};

class spin_governor {
 public:
  explicit spin_governor(spin_policy policy) : policy_(policy) {}

  /// `n` submissions arrived at `now`: the polls to set, when the measured
  /// rate calls for a change.
  std::optional<std::size_t> on_submits(std::size_t n, core::time_point now) {
    if (!started_) {
      started_ = true;
      window_start_ = now;
    }
    count_ += n;
    const auto elapsed = now - window_start_;
    if (elapsed < policy_.window) return std::nullopt;
    const double rate = double(count_) / std::chrono::duration<double>(elapsed).count();
    window_start_ = now;
    count_ = 0;
    const auto polls = rate < policy_.quiet_rate ? policy_.quiet_polls : policy_.busy_polls;
    if (applied_once_ && applied_ == polls) return std::nullopt;
    applied_once_ = true;
    applied_ = polls;
    return polls;
  }

 private:
  spin_policy policy_;
  bool started_ = false;
  core::time_point window_start_{};
  std::uint64_t count_ = 0;
  // Not an optional: g++ 12 warns it "may be used uninitialized" when
  // inlined into a loop (-Werror).
  bool applied_once_ = false;
  std::size_t applied_ = 0;
};

}  // namespace drover::actors
