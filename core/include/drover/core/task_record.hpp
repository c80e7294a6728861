#pragma once
// The broker's record of one live task. Owned by the broker's task table;
// linked into exactly one structure at a time through `prev`/`next`: its
// queue's ready list while ready, its consumer's lease list while leased.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "drover/core/bytes.hpp"
#include "drover/core/ids.hpp"
#include "drover/core/intrusive_timer_wheel.hpp"
#include "drover/core/outcome.hpp"
#include "drover/core/task_spec.hpp"
#include "drover/core/task_state.hpp"
#include "drover/core/time.hpp"

namespace drover::core {

/// Rarely used fields, allocated only for tasks that have them, so a plain
/// queued task stays small (docs/benchmarks.md, "memory").
struct task_extras {
  std::shared_ptr<const meta_map> meta;
  std::string idempotency_key;
  std::optional<backoff_policy> backoff;
  std::vector<observer_ref> more_observers;  // duplicate submits that joined this task, and watchers
  error last_error;                          // why the latest attempt failed
  time_point expires_at = time_never;        // set when the task has a time to live
};

struct task_record {
  task_id id;               // invalid (0) while the table slot is free
  std::uint32_t slot = 0;   // where the task table keeps this record
  std::uint32_t queue = 0;  // index into the broker's queue table
  task_state state = task_state::queued;
  std::uint8_t priority = 0;
  std::uint16_t attempt = 0;  // attempts started so far
  std::uint16_t max_attempts = 1;
  bool delayed = false;  // queued but waiting for not_before (not in the ready list)
  bool observer_follows_states = false;  // observer->follows_states(), asked at submit
  std::uint32_t timeout_ms = 0;  // longest one attempt may run (milliseconds keep the record small)

  duration timeout() const { return std::chrono::milliseconds(timeout_ms); }
  time_point expires_at() const { return extras ? extras->expires_at : time_never; }
  bytes payload;
  std::unique_ptr<task_extras> extras;
  std::shared_ptr<task_observer> observer;

  // Lease, valid while state == leased.
  lease_id lease;
  std::uint32_t owner = 0;  // consumer index
  observer_tag tag_for_observer = 0;  // fits the padding after `owner`: the record stays 128 bytes

  observer_ref observed_by() const { return observer_ref(observer, tag_for_observer); }

  // The one timer a task needs at a time: not_before while delayed, the
  // lease deadline while leased (never both).
  timer_hook<task_record> timer;

  task_record* prev = nullptr;
  task_record* next = nullptr;

  task_extras& ensure_extras() {
    if (!extras) extras = std::make_unique<task_extras>();
    return *extras;
  }
};

}  // namespace drover::core
