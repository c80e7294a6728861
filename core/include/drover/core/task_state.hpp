#pragma once
// The task lifecycle (docs/architecture.md, "Lifecycle"):
//   queued (ready or delayed) -> leased -> succeeded | failed | dead | cancelled
//   leased -> queued again (retry after backoff, or lease released)
//   queued -> cancelled | expired
#include <cstdint>

namespace drover::core {

enum class task_state : std::uint8_t {
  queued,     // waiting: ready for dispatch, or delayed until not_before
  leased,     // dispatched to one consumer under a lease (attempt k)
  succeeded,  // terminal: the handler returned a value
  failed,     // terminal: the handler reported a permanent (non-retryable) failure
  dead,       // terminal: retryable failures used up every attempt (dead-lettered)
  cancelled,  // terminal: cancelled before it finished
  expired,    // terminal: its time to live passed before it was dispatched
};

constexpr bool is_terminal(task_state s) {
  return s != task_state::queued && s != task_state::leased;
}

/// Whether the lifecycle allows `from -> to`. Every state change in core
/// goes through this check.
constexpr bool can_transition(task_state from, task_state to) {
  switch (from) {
    case task_state::queued:
      return to == task_state::leased || to == task_state::cancelled || to == task_state::expired;
    case task_state::leased:
      return to == task_state::queued || to == task_state::succeeded || to == task_state::failed ||
             to == task_state::dead || to == task_state::cancelled;
    default:
      return false;  // terminal states are final
  }
}

const char* to_string(task_state s);

}  // namespace drover::core
