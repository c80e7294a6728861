#pragma once
// Every dispatched task is under a lease: (consumer, attempt, lease id,
// deadline). The lease id is a fencing token: a result is accepted only
// with the task's current lease id. Deadlines expire through a timer wheel;
// a consumer's departure releases all its leases at once (its own list).
#include <cassert>
#include <cstdint>
#include <optional>
#include <vector>

#include "drover/core/errc.hpp"
#include "drover/core/intrusive_list.hpp"
#include "drover/core/result.hpp"
#include "drover/core/task_record.hpp"
#include "drover/core/intrusive_timer_wheel.hpp"

namespace drover::core {

class lease_table {
 public:
  lease_table(duration resolution, time_point start) : wheel_(resolution, 4096, start) {}

  /// Leases `task` to consumer index `consumer` until `deadline`.
  lease_id grant(task_record& task, std::uint32_t consumer, time_point deadline) {
    assert(task.state == task_state::queued && !task.prev && !task.next);
    ensure_consumer(consumer);
    task.lease = lease_id{++last_lease_};
    task.owner = consumer;
    by_consumer_[consumer].push_back(task);
    wheel_.schedule(task, deadline);
    ++active_;
    return task.lease;
  }

  /// Whether a report from `consumer` for `lease` may settle `task`.
  static result<void> check(const task_record& task, std::uint32_t consumer, lease_id lease) {
    if (task.state != task_state::leased || task.lease != lease || task.owner != consumer) {
      return make_error(errc::stale_lease, "lease " + std::to_string(lease.value) + " is not the current lease of task " +
                                               std::to_string(task.id.value));
    }
    return ok();
  }

  /// Ends the task's lease (result, failure, cancel or expiry).
  void release(task_record& task) {
    assert(task.state == task_state::leased);
    by_consumer_[task.owner].erase(task);
    wheel_.cancel(task);
    --active_;
  }

  /// Releases every lease the consumer holds, calling on_released(task)
  /// after each one is unlinked.
  template <class OnReleased>
  void release_all(std::uint32_t consumer, OnReleased&& on_released) {
    if (consumer >= by_consumer_.size()) return;
    auto& list = by_consumer_[consumer];
    while (task_record* task = list.front()) {
      release(*task);
      on_released(*task);
    }
  }

  /// Calls on_expired(task) for every lease whose deadline passed; the task
  /// is still leased and linked to its consumer (the caller ends the lease).
  template <class OnExpired>
  std::size_t expire(time_point now, OnExpired&& on_expired) {
    return wheel_.advance(now, on_expired);
  }

  static time_point deadline_of(const task_record& task) { return task.timer.due; }

  std::size_t held_by(std::uint32_t consumer) const {
    return consumer < by_consumer_.size() ? by_consumer_[consumer].size() : 0;
  }
  std::size_t active() const { return active_; }
  std::optional<time_point> next_deadline() const { return wheel_.next_due(); }

 private:
  void ensure_consumer(std::uint32_t consumer) {
    if (consumer >= by_consumer_.size()) by_consumer_.resize(consumer + 1);
  }

  intrusive_timer_wheel<task_record, &task_record::timer> wheel_;
  std::vector<intrusive_list<task_record>> by_consumer_;
  std::uint64_t last_lease_ = 0;
  std::size_t active_ = 0;
};

}  // namespace drover::core
