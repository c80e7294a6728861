#include "drover/actors/pool_actor.hpp"

#include <algorithm>
#include <exception>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/co_spawn.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

namespace drover::actors {

namespace {

std::string describe(std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "handler threw a non-standard exception";
  }
}

void on_finished(pool_actor_type* self, std::uint32_t running_slot, std::exception_ptr ep, task_result result) {
  auto& st = self->state;
  const auto& item = st.running.at(running_slot).ctx.item();
  // A parked handler cannot end: without_permit takes the permit back first.
  assert(!st.running.at(running_slot).ctx.parked());
  if (ep) result = task_result::failure(describe(ep));
  st.reports.push_back(report_item{item.id, item.lease, std::move(result), item.slot});
  st.running.remove(running_slot);
  ++st.counters.completed;
}

void start(pool_actor_type* self, core::dispatch_item item) {
  auto& st = self->state;
  const auto queue = item.queue;
  std::shared_ptr<handler> fn = queue < st.handler_by_queue.size() ? st.handler_by_queue[queue] : nullptr;
  if (!fn) {
    st.reports.push_back(
        report_item{item.id, item.lease, task_result::failure("no handler for this queue", false), item.slot});
    return;
  }
  const std::uint32_t slot = st.running.add(std::move(item), st.queue_names[queue]);
  auto& task = st.running.at(slot);
  task.ctx.bind_permits(&st);
  st.counters.peak_running = std::max(st.counters.peak_running, st.active());
  assert(st.active() <= st.config.work_limit);
  // Runs inline up to the handler's first suspension (pool_executor).
  asio::co_spawn(pool_executor(*st.exec), (*fn)(task.ctx),
                 asio::bind_cancellation_slot(task.cancel.slot(), [self, slot](std::exception_ptr ep, task_result r) {
                   on_finished(self, slot, ep, std::move(r));
                 }));
}

/// Demand flows from free permits: limit - running - waiting - requested,
/// where running counts the handlers holding a permit or waiting for one.
void send_update(pool_actor_type* self) {
  auto& st = self->state;
  const auto committed =
      static_cast<std::int64_t>(st.active()) + static_cast<std::int64_t>(st.resuming.size() + st.waiting.size() + st.requested);
  const std::int64_t want = static_cast<std::int64_t>(st.config.work_limit) - committed;
  consumer_update_msg update{st.config.id, std::move(st.reports), 0, 0};
  st.reports.clear();
  if (want > 0) {
    update.demand = static_cast<std::uint32_t>(want);
    st.requested += update.demand;
  } else if (want < 0 && st.requested > 0) {
    update.revoke = static_cast<std::uint32_t>(std::min<std::int64_t>(st.requested, -want));
    st.requested -= update.revoke;
  }
  if (!update.reports.empty() || update.demand > 0 || update.revoke > 0) self->send(st.config.broker, std::move(update));
}

/// Free permits go first to parked handlers that want theirs back: they
/// hold work already begun.
void hand_back_permits(pool_state& st) {
  while (!st.resuming.empty() && st.has_permit_free()) {
    --st.parked;
    st.counters.peak_running = std::max(st.counters.peak_running, st.active());
    st.exec->post(std::move(st.resuming.front()));
    st.resuming.pop_front();
  }
}

/// One turn of the claim/run loop: never waits on a handler.
void run_turn(pool_actor_type* self) {
  auto& st = self->state;
  {
    pool_context::turn turn(*st.exec);
    for (;;) {
      hand_back_permits(st);
      while (st.resuming.empty() && !st.waiting.empty() && st.has_permit_free()) {
        auto item = std::move(st.waiting.front());
        st.waiting.pop_front();
        start(self, std::move(item));
      }
      const bool ran = st.exec->drain() > 0;
      const bool can_start = (!st.resuming.empty() || !st.waiting.empty()) && st.has_permit_free();
      if (!ran && !can_start) break;
    }
  }
  send_update(self);
}

void cancel_leases(pool_actor_type* self, const std::vector<core::cancel_notice>& notices) {
  auto& st = self->state;
  pool_context::turn turn(*st.exec);
  for (const auto& notice : notices) {
    if (running_task* task = st.running.find_lease(notice.task, notice.lease)) {
      task->ctx.mark_cancelled();
      task->cancel.emit(asio::cancellation_type::terminal);
      continue;
    }
    // Not started yet: drop it; the broker already ended the lease.
    std::erase_if(st.waiting, [&](const core::dispatch_item& item) { return item.lease == notice.lease; });
  }
}

}  // namespace

// Both run in the pool's turn: a handler runs only there (pool_executor).
void pool_state::give_back() {
  assert(active() > 0);
  ++parked;
}

void pool_state::take_again(unique_function resume) {
  assert(parked > 0);
  resuming.push_back(std::move(resume));
  hand_back_permits(*this);
}

caf::behavior pool_actor(pool_actor_type* self, pool_config config) {
  auto& st = self->state;
  st.config = std::move(config);
  if (!st.config.services) {
    st.own_services = std::make_unique<asio::execution_context>();
    st.config.services = st.own_services.get();
  }
  auto weak = caf::actor_cast<caf::weak_actor_ptr>(self);
  st.exec = st.config.context ? st.config.context : std::make_shared<pool_context>(*st.config.services);
  st.exec->set_wake([weak] {
    if (auto strong = weak.lock()) caf::anon_send(caf::actor_cast<caf::actor>(strong), wake_atom::value);
  });
  self->request(st.config.broker, caf::infinite, join_msg{st.config.id, caf::actor_cast<caf::actor>(self)})
      .then([=](const core::error& err) {
        if (err) self->quit(caf::make_error(caf::sec::runtime_error, "pool could not join: " + err.message));
      });
  return {
      [=](register_msg& m) -> caf::result<std::uint32_t> {
        auto promise = self->make_response_promise<std::uint32_t>();
        auto fn = std::make_shared<handler>(std::move(m.fn));
        self->state.handlers[m.queue] = fn;
        self->request(self->state.config.broker, caf::infinite, subscribe_msg{self->state.config.id, m.queue})
            .then(
                [=](std::uint32_t index) mutable {
                  auto& s = self->state;
                  if (index >= s.handler_by_queue.size()) {
                    s.handler_by_queue.resize(index + 1);
                    s.queue_names.resize(index + 1);
                  }
                  s.handler_by_queue[index] = fn;
                  s.queue_names[index] = m.queue;
                  run_turn(self);  // first demand for the new queue
                  promise.deliver(index);
                },
                [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
        return promise;
      },
      [=](dispatch_msg& m) {
        auto& s = self->state;
        for (auto& item : m.items) {
          if (s.requested > 0) --s.requested;  // a revoke may have crossed this batch
          s.waiting.push_back(std::move(item));
        }
        run_turn(self);
      },
      [=](const lease_cancel_msg& m) {
        cancel_leases(self, m.notices);
        run_turn(self);
      },
      [=](wake_atom) { run_turn(self); },
      [=](limit_atom, std::uint32_t limit) {
        self->state.config.work_limit = limit;
        run_turn(self);
      },
      [=](limit_atom) -> std::uint32_t { return self->state.config.work_limit; },
      [=](stats_atom) -> pool_stats { return self->state.stats(); },
  };
}

}  // namespace drover::actors
