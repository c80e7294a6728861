#pragma once
// The embedded node: start one in a service, register coroutine handlers,
// submit tasks and follow their outcomes. See examples/embedded_service.cpp.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>

#include "drover/actors/handler.hpp"
#include "drover/actors/remote_sink.hpp"
#include "drover/core/backoff.hpp"
#include "drover/core/broker_core.hpp"
#include "drover/core/bytes.hpp"
#include "drover/core/result.hpp"
#include "drover/core/task_spec.hpp"
#include "drover/task_handle.hpp"

namespace drover {

using actors::handler;
using actors::task_context;
using actors::task_result;
using core::bytes;
using core::errc;
using core::error;
using core::task_options;

struct node_config {
  /// Most handlers running at once on this node; changeable at run time.
  std::uint32_t work_limit = 64;
  core::balance_policy balance = core::balance_policy::least_loaded;
  /// Backpressure: live (non-terminal) tasks and their payload bytes.
  std::size_t max_queued_tasks = 1'000'000;
  std::size_t max_queued_bytes = std::size_t{1} << 30;
  std::size_t payload_bytes_max = std::size_t{64} << 20;
  std::uint16_t default_max_attempts = 3;
  std::chrono::nanoseconds default_timeout = std::chrono::seconds(30);
  core::backoff_policy default_backoff{};
  /// CAF scheduler threads; 0 = one per core but one (at least one).
  std::size_t scheduler_threads = 0;
  /// Instead of CAF's scheduler threads, one actor thread that a gateway's
  /// I/O loop can take over (host_actors): the broker and the runtimes'
  /// consumer actors then run on the thread serving their sockets, with no
  /// hand-over between threads per message (docs/architecture.md). For a
  /// node that serves remote runtimes; in-process handlers would share that
  /// thread with the gateway. The spin settings below do not apply.
  bool hostable_actors = false;
  /// An idle scheduler thread polls for work this often (CAF's "moderate"
  /// phase, about 25 ms after its last work) before sleeping on a condition
  /// variable: the wake-up latency of a lightly loaded node
  /// (docs/benchmarks.md, "latency").
  std::chrono::microseconds idle_poll_interval{10};
  /// Polls an idle scheduler thread makes without sleeping (CAF's
  /// "aggressive" phase; CAF's default is 100), a few hundred microseconds:
  /// work arriving meanwhile starts within microseconds. On this VM a sleep
  /// of 10 us lasts 50-100 us, so sleeping polls cannot give a 50 us p99
  /// (docs/benchmarks.md, "latency").
  std::size_t idle_spin_polls = 20'000;
  /// While submissions arrive more rarely than `quiet_rate` per second
  /// (measured over 50 ms), the scheduler thread running the broker spins
  /// `quiet_spin_polls` polls when idle instead of `idle_spin_polls`, so a
  /// lightly loaded node stays awake between tasks (no wake-up per task);
  /// under heavier load it spins `idle_spin_polls`. 0 = off. The spin costs
  /// up to one core while tasks arrive more often than it lasts
  /// (docs/operations.md).
  std::size_t quiet_spin_polls = 0;
  double quiet_rate = 2'500;
  /// Sleeping polls after the spinning ones, before the thread blocks on a
  /// condition variable (CAF's "moderate" phase; CAF's default is 500).
  std::size_t idle_sleep_polls = 0;
  /// Timer slack of the scheduler threads: Linux rounds their sleeps up by
  /// this much (50 us by default), which would add to every wake-up.
  std::chrono::nanoseconds timer_slack{1000};
  /// Seed for retry jitter; 0 = drawn from the OS at start.
  std::uint64_t seed = 0;
};

/// What submit does when the node is full.
enum class when_full : std::uint8_t {
  fail,  // return errc::queue_full at once
  wait,  // block (or, from a coroutine, suspend) until there is room
};

struct node_stats {
  std::vector<core::queue_stats> queues;
  std::size_t live_tasks = 0;
  std::size_t live_bytes = 0;
  std::size_t dead_letters = 0;
  std::uint32_t work_limit = 0;
  std::uint32_t running = 0;  // handlers holding a permit
  std::uint32_t parked = 0;   // handlers awaiting without one (task_context::without_permit)
  std::uint32_t peak_running = 0;
  std::uint64_t completed = 0;
};

class node {
 public:
  /// Starts the actor system, the broker, the worker pool and the I/O thread.
  /// Throws std::invalid_argument for an inconsistent configuration.
  static std::unique_ptr<node> start(node_config config = {});
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Runs `fn` for every task of `queue` (declares the queue).
  core::result<void> handle(const std::string& queue, handler fn);
  /// Declares a queue without a handler here (tasks wait for a consumer).
  core::result<void> declare_queue(const std::string& queue);

  // Overloads rather than default arguments: g++ 12 miscompiles default
  // arguments of class type in calls inside a coroutine (docs/stack-notes.md).

  core::result<task_handle> submit(const std::string& queue, bytes payload, task_options options, when_full full);
  core::result<task_handle> submit(const std::string& queue, bytes payload, task_options options) {
    return submit(queue, std::move(payload), std::move(options), when_full::fail);
  }
  core::result<task_handle> submit(const std::string& queue, bytes payload) {
    return submit(queue, std::move(payload), task_options{}, when_full::fail);
  }

  /// Many tasks of one queue with the same options: one check, one
  /// reservation and one hand-over for the whole batch (all or none).
  core::result<std::vector<task_handle>> submit_batch(const std::string& queue, std::vector<bytes> payloads,
                                                      task_options options, when_full full);
  core::result<std::vector<task_handle>> submit_batch(const std::string& queue, std::vector<bytes> payloads) {
    return submit_batch(queue, std::move(payloads), task_options{}, when_full::fail);
  }

  /// For gateways: `observer` (not a task handle) hears the acceptance, the
  /// states and the outcome, or a later rejection, on the broker's thread
  /// (keep it short: post the work elsewhere). No handle, no per-task lock
  /// or callback list; returns the task id. Checks as `submit` does. One
  /// observer may follow many tasks: each call carries the task's `tag`.
  core::result<task_id> submit_observed(std::string queue, bytes payload, task_options options, when_full full,
                                        std::shared_ptr<core::task_observer> observer, core::observer_tag tag = 0);
  /// The same for a spec built by the caller (moved once more on its way to
  /// the broker, not per field).
  core::result<task_id> submit_observed(core::task_spec&& spec, when_full full, std::shared_ptr<core::task_observer> observer,
                                        core::observer_tag tag = 0);

  /// Fire and forget: no handle, no outcome delivery; returns the task id.
  core::result<task_id> post(const std::string& queue, bytes payload, task_options options, when_full full);
  core::result<task_id> post(const std::string& queue, bytes payload) {
    return post(queue, std::move(payload), task_options{}, when_full::fail);
  }

  /// From a coroutine; with when_full::wait it suspends, never blocks a thread.
  asio::awaitable<core::result<task_handle>> async_submit(std::string queue, bytes payload, task_options options,
                                                          when_full full);
  asio::awaitable<core::result<task_handle>> async_submit(std::string queue, bytes payload, task_options options) {
    return async_submit(std::move(queue), std::move(payload), std::move(options), when_full::wait);
  }
  asio::awaitable<core::result<task_handle>> async_submit(std::string queue, bytes payload) {
    return async_submit(std::move(queue), std::move(payload), task_options{}, when_full::wait);
  }

  /// The broker's view of a live task; errc::unknown_task once it ended
  /// (its handle keeps the outcome). Blocks as stats() does.
  core::result<core::task_status> status(task_id id) const;

  /// Makes a remote runtime a consumer of this node's broker (the gateway
  /// calls this once per runtime connection). `sink` hears what the broker
  /// sends; the returned link carries demand and results back. A session
  /// that keeps its runtime's leases itself (`session_keeps_leases`:
  /// refuses a result for a lease it does not hold, and drops a revoke for
  /// one already gone) gets a link that reports straight to the broker.
  std::unique_ptr<actors::remote_link> attach_remote(std::vector<std::string> queues,
                                                     std::shared_ptr<actors::remote_sink> sink,
                                                     bool session_keeps_leases = false);

  /// Asks the broker to cancel a task by id (the outcome tells whether it was in time).
  void cancel(task_id id);

  /// Follows a live task, whoever submitted it: `observer` hears its state
  /// at once, then each change and the outcome, on the broker's thread
  /// (keep it short); or only on_rejected (unknown_task) when the broker no
  /// longer knows the task. It never hears on_accepted.
  void watch(task_id id, std::shared_ptr<core::task_observer> observer, core::observer_tag tag = 0);
  /// Lets go of a watcher before its task ends (it hears nothing more).
  void unwatch(task_id id, std::shared_ptr<core::task_observer> observer);

  void set_work_limit(std::uint32_t limit);
  std::uint32_t work_limit() const;
  /// Blocks until the actors answer: never call it on a thread that hosts
  /// them (see queue_stats_async).
  node_stats stats() const;
  /// The queues' statistics through `done`, on the actors' thread (keep it
  /// short: post the work elsewhere); never blocks. A node that stops first
  /// drops `done` uncalled.
  void queue_stats_async(std::function<void(std::vector<core::queue_stats>)> done) const;
  /// As status(), answered through `done` as queue_stats_async answers.
  void status_async(task_id id, std::function<void(core::result<core::task_status>)> done) const;

  /// With node_config::hostable_actors: the caller's loop runs the node's
  /// actors from now on. `wake` (called from any thread, under a lock: it
  /// must only post to the loop) asks the loop to call run_actors() soon.
  /// False (and nothing changes) if the node was not configured so. One
  /// host at a time: a later call replaces the earlier host.
  bool host_actors(std::function<void()> wake);
  /// On the hosting loop's thread: some actor turns (at most `budget`).
  void run_actors(std::size_t budget);
  /// The node's own actor thread takes its actors back; call it before the
  /// hosting loop stops.
  void unhost_actors();
  /// Waits until no task is live, or the timeout passes; true if drained.
  bool drain(std::chrono::nanoseconds timeout);
  /// Stops accepting, lets the actors finish, joins every thread.
  void stop();

  struct impl;

 private:
  explicit node(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace drover
