#pragma once
// A submitter's handle on one task: its id, its last known state, its
// outcome (wait, callback or co_await) and cancellation.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include <asio/awaitable.hpp>

#include "drover/core/ids.hpp"
#include "drover/core/outcome.hpp"
#include "drover/core/result.hpp"
#include "drover/core/task_state.hpp"

namespace drover {

using core::task_id;
using core::task_outcome;
using core::task_state;

/// The outcome of a submission: the task's outcome, or why it was refused.
using completion = core::result<task_outcome>;

namespace detail {
class task_cell;
}

class task_handle {
 public:
  task_handle() = default;
  explicit task_handle(std::shared_ptr<detail::task_cell> cell) : cell_(std::move(cell)) {}

  bool valid() const { return cell_ != nullptr; }
  /// The task's id; for a duplicate submission (same idempotency key), the
  /// original task's id once the broker has accepted it.
  task_id id() const;
  /// Last state the broker reported (queued until it says otherwise).
  task_state state() const;
  bool done() const;

  /// Blocks until the outcome is known.
  completion wait() const;
  /// Waits at most `timeout`; nothing if the outcome is still unknown.
  std::optional<completion> wait_for(std::chrono::nanoseconds timeout) const;
  /// Calls `fn` once with the outcome: at once if known, else on the
  /// broker's thread when it is (keep it short).
  void on_complete(std::function<void(const completion&)> fn) const;
  /// From a coroutine: resumes on the awaiting coroutine's executor. A
  /// cancellation of the awaiting coroutine (a handler whose lease ended)
  /// ends the wait at once with errc::cancelled; the task itself goes on.
  asio::awaitable<completion> async_wait() const;
  /// Asks the broker to cancel; the outcome says whether it was in time.
  void cancel() const;

 private:
  std::shared_ptr<detail::task_cell> cell_;
};

}  // namespace drover
