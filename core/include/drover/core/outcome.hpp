#pragma once
// The recorded outcome of a task, and the observer that receives it.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>

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

/// Which of an observer's tasks a call is about: one observer may follow
/// many tasks (a client connection follows all its submits with one object)
/// and tells them apart by the tag it gave each; an observer of one task
/// ignores it.
using observer_tag = std::uint32_t;

/// Receives a task's state changes and, once, its outcome. Called on the
/// broker's thread: implementations must be cheap and thread-safe.
class task_observer {
 public:
  virtual ~task_observer() = default;
  /// The broker accepted the submission; `id` differs from the submitted id
  /// when an idempotency key matched an existing task.
  virtual void on_accepted(task_id id, bool duplicate, observer_tag tag) = 0;
  virtual void on_state(task_state state, std::uint16_t attempt, observer_tag tag) = 0;
  /// Asked once, when the task is submitted: false and on_state is never
  /// called. A state call on an observer that ignores it still read the
  /// observer's memory, cold by then: a cache miss on every lease.
  virtual bool follows_states() const { return true; }
  virtual void on_outcome(const task_outcome& outcome, observer_tag tag) = 0;
  /// The submission was refused (unknown queue, invalid option, full node):
  /// no task exists and no other call follows.
  virtual void on_rejected(const error& why, observer_tag tag) = 0;
};

/// An observer and the tag its calls for one task carry.
struct observer_ref {
  std::shared_ptr<task_observer> target;
  observer_tag tag = 0;

  observer_ref() = default;
  observer_ref(std::nullptr_t) {}
  template <class Observer>
    requires std::is_convertible_v<Observer*, task_observer*>
  observer_ref(std::shared_ptr<Observer> o, observer_tag t = 0) : target(std::move(o)), tag(t) {}

  explicit operator bool() const { return target != nullptr; }
  void accepted(task_id id, bool duplicate) const { target->on_accepted(id, duplicate, tag); }
  void state(task_state s, std::uint16_t attempt) const { target->on_state(s, attempt, tag); }
  void outcome(const task_outcome& o) const { target->on_outcome(o, tag); }
  void rejected(const error& why) const { target->on_rejected(why, tag); }
};

}  // namespace drover::core
