#pragma once
// The broker's state machine: queues, consumers with credit, leases,
// retries, delays, idempotency and dead letters. Pure logic: every call that
// needs the time takes `now`; randomness comes from a seeded rng. The
// broker actor is a thin shell that feeds it messages and ships its effects.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "drover/core/backoff.hpp"
#include "drover/core/consumer_set.hpp"
#include "drover/core/dead_letters.hpp"
#include "drover/core/ids.hpp"
#include "drover/core/lease_table.hpp"
#include "drover/core/outcome.hpp"
#include "drover/core/ready_queue.hpp"
#include "drover/core/result.hpp"
#include "drover/core/rng.hpp"
#include "drover/core/task_record.hpp"
#include "drover/core/task_spec.hpp"
#include "drover/core/task_table.hpp"
#include "drover/core/timer_wheel.hpp"

namespace drover::core {

struct broker_config {
  balance_policy policy = balance_policy::least_loaded;
  std::uint16_t default_max_attempts = 3;
  backoff_policy default_backoff{};
  duration default_timeout = std::chrono::seconds(30);
  duration idempotency_retention = std::chrono::minutes(10);
  std::size_t max_tasks = 2'000'000;               // live (non-terminal) tasks
  std::size_t max_bytes = std::size_t{1} << 32;    // their payload bytes
  std::size_t payload_bytes_max = std::size_t{64} << 20;
  std::size_t dead_letters_max = 10'000;
  duration timer_resolution = std::chrono::milliseconds(1);
  std::uint64_t seed = 1;
};

struct submit_ack {
  task_id id;
  bool duplicate = false;  // an idempotency key matched an existing task
};

/// What a consumer reports for one attempt.
struct attempt_result {
  bool ok = true;
  bytes value;           // the result when ok
  std::string message;   // why, when not ok
  bool retryable = true; // a permanent failure skips the remaining attempts

  static attempt_result success(bytes v) { return {true, std::move(v), {}, true}; }
  static attempt_result failure(std::string why, bool retry = true) { return {false, {}, std::move(why), retry}; }
};

struct dispatch_item {
  task_id id;
  std::uint32_t slot = 0;  // hand it back with the report: found without hashing
  lease_id lease;
  std::uint16_t attempt = 0;
  std::uint32_t queue = 0;
  bytes payload;
  std::shared_ptr<const meta_map> meta;
  time_point deadline = time_never;
};

struct dispatch_batch {
  consumer_id consumer;
  std::vector<dispatch_item> items;
};

/// Tells a consumer to stop working on a lease it no longer holds.
struct cancel_notice {
  consumer_id consumer;
  task_id task;
  lease_id lease;
};

struct task_status {
  task_id id;
  task_state state = task_state::queued;
  std::uint16_t attempt = 0;
  std::uint16_t max_attempts = 0;
  std::uint32_t queue = 0;
  bool delayed = false;
};

struct queue_stats {
  std::string name;
  std::size_t ready = 0, delayed = 0, leased = 0, consumers = 0;
  /// Tasks the queue's consumers ask for now (their credit): what it could
  /// dispatch at once. A consumer of several queues counts in each.
  std::uint64_t demand = 0;
  std::uint64_t submitted = 0, succeeded = 0, failed = 0, dead = 0, cancelled = 0, expired = 0, retried = 0;
};

/// What finished tasks let go of: observers and payloads the submitters
/// allocated. Handing them back lets the submitting side free them, so a
/// buffer is freed by the thread that allocated it (glibc's per-thread caches
/// then reuse it instead of taking an arena lock).
struct retired_refs {
  std::vector<std::shared_ptr<task_observer>> observers;
  std::vector<bytes> payloads;
  bool empty() const { return observers.empty() && payloads.empty(); }
};

struct consumer_stats {
  consumer_id id;
  std::uint32_t credit = 0, in_flight = 0;
};

class broker_core {
 public:
  broker_core(broker_config config, time_point start);
  ~broker_core();
  broker_core(const broker_core&) = delete;
  broker_core& operator=(const broker_core&) = delete;

  // --- queues and consumers -------------------------------------------
  std::uint32_t declare_queue(std::string_view name);
  std::optional<std::uint32_t> find_queue(std::string_view name) const;
  const std::string& queue_name(std::uint32_t queue) const;
  result<void> join(consumer_id consumer, std::span<const std::string> queues);
  /// A joined consumer also serves `queue` (declared if new); returns its index.
  result<std::uint32_t> subscribe(consumer_id consumer, std::string_view queue);
  /// Releases every lease the consumer holds (tasks requeue or go dead).
  result<void> leave(consumer_id consumer, time_point now);
  result<void> add_demand(consumer_id consumer, std::uint32_t n);
  /// Takes back up to n unused credit; returns how much was taken.
  result<std::uint32_t> revoke_demand(consumer_id consumer, std::uint32_t n);

  // --- tasks ---------------------------------------------------------
  /// A refused submit leaves `observer` as it was (the caller tells it why).
  result<submit_ack> submit(task_id id, task_spec&& spec, observer_ref&& observer, time_point now);
  /// `slot` is the dispatch item's slot (a hint; any value works, slower).
  result<void> report(consumer_id consumer, task_id task, lease_id lease, attempt_result&& outcome, time_point now,
                      std::uint32_t slot = UINT32_MAX);
  /// Hints for a batch of reports (no effect on state): the record in
  /// `slot`, then, issued later once that has had time to arrive, what
  /// finishing its task reads beyond it (observer, payload bookkeeping).
  /// Records go cold while their tasks run; loaded ahead, their misses
  /// overlap instead of stalling one report at a time (docs/benchmarks.md).
  void prefetch_record(std::uint32_t slot) const { tasks_.prefetch(slot); }
  void prefetch_record_targets(task_id task, std::uint32_t slot) const;
  /// A hint for a batch of submits: the id index's bucket of a task about
  /// to be submitted.
  void prefetch_submit(task_id task) const { tasks_.prefetch_index(task); }
  result<void> cancel(task_id task, time_point now);
  result<task_status> status(task_id task) const;
  /// Adds an observer to a live task: it hears the task's state at once,
  /// then each change and the outcome (never on_accepted). unknown_task,
  /// and nothing called, once the broker no longer knows the task.
  result<void> watch(task_id task, observer_ref observer);
  /// Takes a watching observer off a live task (a follower that left).
  void unwatch(task_id task, const task_observer* observer);

  // --- time and effects ----------------------------------------------
  /// Fires due timers: delays ending, leases expiring, time-to-live, retention.
  void advance(time_point now);
  /// When advance() next has something to do, if ever.
  std::optional<time_point> next_wakeup() const;
  /// Hands ready tasks to consumers with credit; O(1) per task dispatched.
  void dispatch(time_point now);
  std::vector<dispatch_batch> take_dispatches();
  std::vector<cancel_notice> take_cancels();
  /// References released by tasks that ended since the last call.
  retired_refs take_retired();

  // --- inspection ----------------------------------------------------
  std::size_t live_tasks() const { return tasks_.size(); }
  std::size_t live_bytes() const { return live_bytes_; }
  std::size_t queue_count() const { return queues_.size(); }
  /// One queue's figures; `demand` costs a pass over the consumers.
  queue_stats stats(std::uint32_t queue) const;
  /// Every queue's, in index order, with one pass over the consumers.
  std::vector<queue_stats> all_stats() const;
  std::optional<consumer_stats> consumer(consumer_id id) const;
  const dead_letter_store& dead_letters() const { return dead_letters_; }
  const broker_config& config() const { return config_; }
  /// Checks every internal invariant (O(tasks)); for tests and the simulator.
  result<void> check_invariants() const;

 private:
  struct queue_state;
  struct consumer_state;
  /// Time-to-live timers are lazily cancelled (checked when they fire):
  /// only tasks with a ttl have one, and it is gone after the ttl.
  struct ttl_timer {
    time_point due;
    task_id task;
  };
  struct idempotency_entry {
    task_id id;
    std::optional<task_outcome> outcome;  // kept for the retention after the task ends
  };

  task_record* find_task(task_id id);
  const task_record* find_task(task_id id) const;
  consumer_state* find_consumer(consumer_id id);
  /// The consumer in slot `index` if it is `id` (kept as the last one found), else null.
  consumer_state* consumer_at(std::uint32_t index, consumer_id id);
  void make_ready(task_record& task);
  void lease_to(task_record& task, consumer_state& consumer, time_point now);
  void end_lease(task_record& task);
  void retry_or_bury(task_record& task, error why, bool with_backoff, time_point now);
  void finish(task_record& task, task_state terminal, error why, bytes value, time_point now);
  void remove_from_queue(task_record& task);
  void mark_dispatchable(std::uint32_t queue);
  void refresh_membership(consumer_state& consumer);
  void refresh_load(consumer_state& consumer);
  void set_state(task_record& task, task_state next);
  void notify_state(const task_record& task);
  void on_delay_end(task_record& task);
  void on_ttl(const ttl_timer& timer, time_point now);
  void on_lease_deadline(task_record& task, time_point now);
  void forget_idempotency(time_point now);
  std::string idempotency_slot(std::uint32_t queue, std::string_view key) const;
  /// A queue's counters with its gauges as they are now; demand aside.
  static queue_stats snapshot(const queue_state& queue);
  /// Calls f(consumer, subscription) for every joined consumer's every queue.
  template <typename F>
  void for_each_subscription(F&& f) const;

  broker_config config_;
  rng random_;
  std::vector<std::unique_ptr<queue_state>> queues_;
  std::unordered_map<std::string, std::uint32_t> queue_index_;
  mutable std::uint32_t last_found_queue_ = UINT32_MAX;
  std::vector<std::unique_ptr<consumer_state>> consumers_;
  std::vector<std::uint32_t> free_consumer_slots_;
  std::unordered_map<consumer_id, std::uint32_t> consumer_index_;
  std::uint32_t last_consumer_ = UINT32_MAX;  // find_consumer's one-entry cache: an index into consumers_
  task_table tasks_;
  std::size_t live_bytes_ = 0;
  lease_table leases_;
  intrusive_timer_wheel<task_record, &task_record::timer> delays_;
  timer_wheel<ttl_timer> ttl_timers_;
  std::unordered_map<std::string, idempotency_entry> idempotency_;
  std::deque<std::pair<time_point, std::string>> idempotency_forget_;
  dead_letter_store dead_letters_;
  std::deque<std::uint32_t> dispatch_list_;
  std::vector<dispatch_batch> outbox_;
  std::vector<std::uint32_t> outbox_owners_;  // each batch's consumer index, to reset its `outbox`
  std::vector<cancel_notice> cancels_;
  retired_refs retired_;
};

}  // namespace drover::core
