#pragma once
// The recorded outcome of a task, and the observer that receives it.
#include <cstdint>
#include <memory>

#include "drover/core/bytes.hpp"
#include "drover/core/errc.hpp"
#include "drover/core/ids.hpp"
#include "drover/core/task_state.hpp"

namespace drover::core {

struct task_outcome {
  task_id id;
  task_state state = task_state::succeeded;  // always terminal
  bytes value;      // the handler's result when succeeded
  error err;        // why, when not succeeded
  std::uint16_t attempts = 0;
};

/// Receives a task's state changes and, once, its outcome. Called on the
/// broker's thread: implementations must be cheap and thread-safe.
class task_observer {
 public:
  virtual ~task_observer() = default;
  /// The broker accepted the submission; `id` differs from the submitted id
  /// when an idempotency key matched an existing task.
  virtual void on_accepted(task_id id, bool duplicate) = 0;
  virtual void on_state(task_state state, std::uint16_t attempt) = 0;
  /// Asked once, when the task is submitted: false and on_state is never
  /// called. A state call on an observer that ignores it still read the
  /// observer's memory, cold by then: a cache miss on every lease.
  virtual bool follows_states() const { return true; }
  virtual void on_outcome(const task_outcome& outcome) = 0;
  /// The submission was refused (unknown queue, invalid option, full node):
  /// no task exists and no other call follows.
  virtual void on_rejected(const error& why) = 0;
};

using observer_ref = std::shared_ptr<task_observer>;

}  // namespace drover::core
