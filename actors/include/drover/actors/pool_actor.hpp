#pragma once
// A worker pool: an in-process consumer that runs registered coroutine
// handlers under its work limit. Its claim/run loop never waits on a task:
// each turn starts what the limit allows, runs whatever became ready, and
// tells the broker in one message what finished and how much more it can
// take (free permits become demand). Lowering the limit lets running
// handlers finish and takes back unused demand. A handler awaiting without
// its permit (task_context::without_permit) does not count against the
// limit until it takes a permit again, which it gets ahead of new tasks.
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <asio/cancellation_signal.hpp>
#include <asio/execution_context.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "drover/actors/handler.hpp"
#include "drover/actors/messages.hpp"
#include "drover/actors/pool_executor.hpp"

namespace drover::actors {

struct pool_config {
  core::consumer_id id;
  std::uint32_t work_limit = 64;
  caf::actor broker;
  /// Hosts asio services (timers, sockets) for handlers; its run loop is the
  /// node's I/O thread. Null: the pool owns an idle one (tests, simulation).
  asio::execution_context* services = nullptr;
  /// The executor context of the pool's coroutines. Give one that outlives
  /// `services` whenever handlers may leave coroutines pending in them
  /// (see pool_executor); null: the pool makes its own.
  std::shared_ptr<pool_context> context;
};

struct running_task {
  task_context ctx;
  asio::cancellation_signal cancel;
  running_task(core::dispatch_item item, const std::string& queue) : ctx(std::move(item), queue) {}
};

/// The pool's running handlers by slot: a finished handler's completion
/// names its slot, so no lookup by id is needed on the hot path.
class running_set {
 public:
  std::size_t size() const { return size_; }

  /// Occupies a slot; a freed slot keeps its running_task (context and
  /// cancellation signal), so steady state allocates nothing per task.
  std::uint32_t add(core::dispatch_item item, const std::string& queue) {
    std::uint32_t slot;
    if (!free_.empty()) {
      slot = free_.back();
      free_.pop_back();
      slots_[slot]->ctx.reset(std::move(item), queue);
    } else {
      slot = static_cast<std::uint32_t>(slots_.size());
      slots_.push_back(std::make_unique<running_task>(std::move(item), queue));
      busy_.push_back(false);
    }
    busy_[slot] = true;
    ++size_;
    return slot;
  }

  running_task& at(std::uint32_t slot) {
    assert(busy_[slot]);
    return *slots_[slot];
  }

  void remove(std::uint32_t slot) {
    assert(busy_[slot]);
    busy_[slot] = false;
    slots_[slot]->ctx.reset(core::dispatch_item{}, slots_[slot]->ctx.queue());  // drop the payload now
    free_.push_back(slot);
    --size_;
  }

  /// Linear in the running count: only cancellations ask.
  running_task* find_lease(core::task_id task, core::lease_id lease) {
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (busy_[i] && slots_[i]->ctx.id() == task && slots_[i]->ctx.item().lease == lease) return slots_[i].get();
    return nullptr;
  }

 private:
  std::vector<std::unique_ptr<running_task>> slots_;
  std::vector<bool> busy_;
  std::vector<std::uint32_t> free_;
  std::size_t size_ = 0;
};

struct pool_state : permit_book {
  pool_config config;
  std::unique_ptr<asio::execution_context> own_services;
  std::shared_ptr<pool_context> exec;
  std::unordered_map<std::string, std::shared_ptr<handler>> handlers;  // by queue name
  std::vector<std::shared_ptr<handler>> handler_by_queue;              // by broker queue index
  std::vector<std::string> queue_names;                                // by broker queue index
  std::deque<core::dispatch_item> waiting;  // received beyond the limit (after a lowering)
  running_set running;
  std::uint32_t parked = 0;                // running handlers awaiting without a permit
  std::deque<unique_function> resuming;    // parked handlers waiting for a permit again (part of `parked`)
  std::uint32_t requested = 0;  // demand the broker has not filled yet
  std::vector<report_item> reports;
  pool_stats counters;  // the totals; stats() fills in the gauges

  static inline const char* name = "drover.pool";

  pool_state() = default;
  pool_state(const pool_state&) = delete;
  pool_state& operator=(const pool_state&) = delete;
  ~pool_state() {
    if (exec) exec->close();
  }

  /// Handlers holding a permit: what the work limit counts.
  std::uint32_t active() const { return static_cast<std::uint32_t>(running.size()) - parked; }
  bool has_permit_free() const { return active() < config.work_limit; }

  /// The counters with the current gauges (what stats_atom answers).
  pool_stats stats() const {
    auto out = counters;
    out.work_limit = config.work_limit;
    out.running = active();
    out.parked = parked;
    out.waiting = static_cast<std::uint32_t>(waiting.size());
    out.requested = requested;
    return out;
  }

  void give_back() override;
  void take_again(unique_function resume) override;
};

using pool_actor_type = caf::stateful_actor<pool_state>;

caf::behavior pool_actor(pool_actor_type* self, pool_config config);

}  // namespace drover::actors
