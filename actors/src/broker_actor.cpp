#include "drover/actors/broker_actor.hpp"

#include <algorithm>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/worker.hpp>

namespace drover::actors {

core::time_point actor_now(const caf::local_actor* self) {
  return core::time_point{
      std::chrono::duration_cast<core::duration>(self->clock().now().time_since_epoch())};
}

bool set_idle_spin(caf::execution_unit* where, std::size_t polls) {
  // CAF reads the aggressive phase's attempts on every idle turn of the
  // worker, which is the thread running this call: no race.
  auto* worker = dynamic_cast<caf::scheduler::worker<caf::policy::work_stealing>*>(where);
  if (!worker) return false;
  worker->data().strategies[0].attempts = polls;
  return true;
}

namespace {

std::vector<remote_task> remote_tasks(const core::broker_core& core, std::vector<core::dispatch_item>&& items) {
  std::vector<remote_task> tasks;
  tasks.reserve(items.size());
  for (auto& item : items) {
    const auto queue = item.queue;
    tasks.push_back(remote_task{std::move(item), core.queue_name(queue)});
  }
  return tasks;
}

/// A consumer that joined with a sink (a WebSocket session) gets its tasks
/// handed to the sink within this turn, with no message to its actor; the
/// others through their actors. With thousands of consumers fed in one turn
/// (capacity 1 each), the gateway spreads the sinks' task frames over its
/// loop's turns (end_of_turn::defer_paced), reads in between, so that the
/// system does not move in lock-step waves (docs/benchmarks.md, stop 21).
void ship_dispatches(broker_actor_type* self) {
  auto& st = self->state;
  for (auto& batch : st.core->take_dispatches()) {
    auto it = st.consumers.find(batch.consumer);
    assert(it != st.consumers.end());
    if (const auto& sink = it->second.sink) {
      sink->deliver(remote_tasks(*st.core, std::move(batch.items)));
      continue;
    }
    self->send(it->second.handle, dispatch_msg{std::move(batch.items)});
  }
}

void ship_cancels(broker_actor_type* self) {
  auto& st = self->state;
  auto notices = st.core->take_cancels();
  if (notices.empty()) return;
  std::unordered_map<core::consumer_id, std::vector<core::cancel_notice>> by_consumer;
  for (auto& n : notices) by_consumer[n.consumer].push_back(n);
  for (auto& [consumer, list] : by_consumer) {
    // A consumer that left already lost its leases; nothing to tell it.
    if (auto it = st.consumers.find(consumer); it != st.consumers.end())
      self->send(it->second.handle, lease_cancel_msg{std::move(list)});
  }
}

void arm_timer(broker_actor_type* self, core::time_point now) {
  auto& st = self->state;
  const auto next = st.core->next_wakeup();
  if (!next) return;
  if (st.timer_armed_for && *st.timer_armed_for <= *next) return;  // an earlier tick will re-arm
  st.timer_armed_for = *next;
  const auto delay = std::max(core::duration{0}, *next - now);
  self->delayed_send(self, std::chrono::duration_cast<caf::timespan>(delay), tick_atom::value);
}

/// Runs after every message: dispatch, then ship what the core produced.
void flush(broker_actor_type* self) {
  const auto now = actor_now(self);
  self->state.core->dispatch(now);
  ship_dispatches(self);
  ship_cancels(self);
  arm_timer(self, now);
  auto& st = self->state;
  if (auto retired = st.core->take_retired(); st.inbox && !retired.empty()) st.inbox->retire(std::move(retired));
  if (st.admission) {
    st.admission->settle(st.drained_tasks, st.drained_bytes, st.core->live_tasks(), st.core->live_bytes());
    st.drained_tasks = st.drained_bytes = 0;
  }
}

void submit_one(broker_actor_type* self, core::time_point now, core::task_id id, core::task_spec&& spec,
                core::observer_ref observer) {
  // A refused submit leaves the observer with us (no copy per submit).
  auto ack = self->state.core->submit(id, std::move(spec), std::move(observer), now);
  if (!ack && observer) observer.rejected(ack.err());
}

void consumer_left(broker_actor_type* self, core::consumer_id consumer) {
  auto& st = self->state;
  auto it = st.consumers.find(consumer);
  if (it == st.consumers.end()) return;
  st.consumer_by_addr.erase(it->second.handle.address());
  st.consumers.erase(it);
  (void)st.core->leave(consumer, actor_now(self));
}

}  // namespace

caf::behavior broker_actor(broker_actor_type* self, core::broker_config config,
                           std::shared_ptr<submission_inbox> inbox, std::shared_ptr<admission_gate> admission) {
  self->state.core = std::make_unique<core::broker_core>(config, actor_now(self));
  self->state.inbox = std::move(inbox);
  self->state.admission = std::move(admission);
  self->set_down_handler([=](caf::down_msg& down) {
    auto it = self->state.consumer_by_addr.find(down.source);
    if (it == self->state.consumer_by_addr.end()) return;
    consumer_left(self, it->second);
    flush(self);
  });
  return {
      [=](drain_atom) {
        if (!self->state.inbox) return;
        auto batch = self->state.inbox->take();
        const auto now = actor_now(self);  // one reading for the batch
        if (auto& spin = self->state.spin)
          if (auto polls = spin->on_submits(batch.size(), now)) set_idle_spin(self->context(), *polls);
        // Each new id goes into the id index at a scattered bucket: loaded ahead.
        constexpr std::size_t index_ahead = 8;
        auto& core = *self->state.core;
        for (std::size_t i = 0; i < std::min(index_ahead, batch.size()); ++i) core.prefetch_submit(batch[i].id);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          if (i + index_ahead < batch.size()) core.prefetch_submit(batch[i + index_ahead].id);
          auto& s = batch[i];
          ++self->state.drained_tasks;
          self->state.drained_bytes += s.spec.payload.size();
          submit_one(self, now, s.id, std::move(s.spec), std::move(s.observer));
        }
        self->state.inbox->recycle(std::move(batch));
        flush(self);
      },
      [=](const spin_policy_msg& m) {
        self->state.spin.emplace(spin_policy{m.quiet_polls, m.busy_polls, m.quiet_rate});
      },
      [=](submit_msg& m) {
        submit_one(self, actor_now(self), m.id, std::move(m.spec), std::move(m.observer));
        flush(self);
      },
      [=](const join_msg& m) -> core::error {
        auto joined = self->state.core->join(m.consumer, {});
        if (!joined) return joined.err();
        self->monitor(m.handle);
        self->state.consumers.emplace(m.consumer, broker_state::joined_consumer{m.handle, m.sink});
        self->state.consumer_by_addr.emplace(m.handle.address(), m.consumer);
        return {};
      },
      [=](const subscribe_msg& m) -> caf::result<std::uint32_t> {
        auto index = self->state.core->subscribe(m.consumer, m.queue);
        if (!index) return caf::make_error(caf::sec::invalid_argument, index.err().message);
        // Reply before dispatching: the consumer must learn the queue's
        // index before the first task of that queue reaches it.
        auto promise = self->make_response_promise<std::uint32_t>();
        promise.deliver(*index);
        flush(self);
        return promise;
      },
      [=](const declare_queue_msg& m) -> std::uint32_t { return self->state.core->declare_queue(m.queue); },
      [=](const leave_msg& m) {
        consumer_left(self, m.consumer);
        flush(self);
      },
      [=](consumer_update_msg& m) {
        auto& core = *self->state.core;
        const auto now = actor_now(self);
        auto& reports = m.reports;
        // Records ahead of the one reported on are loaded in two steps
        // (broker_core::prefetch_record): the record, then what it points at.
        constexpr std::size_t record_ahead = 8, targets_ahead = 4;
        for (std::size_t i = 0; i < std::min(record_ahead, reports.size()); ++i) core.prefetch_record(reports[i].slot);
        for (std::size_t i = 0; i < reports.size(); ++i) {
          if (i + record_ahead < reports.size()) core.prefetch_record(reports[i + record_ahead].slot);
          if (i + targets_ahead < reports.size())
            core.prefetch_record_targets(reports[i + targets_ahead].task, reports[i + targets_ahead].slot);
          auto& r = reports[i];
          // A stale report is normal (cancelled, expired, or a lease the
          // consumer lost): the outcome was already decided elsewhere.
          if (!core.report(m.consumer, r.task, r.lease, std::move(r.result), now, r.slot)) ++self->state.stale_reports;
        }
        if (m.revoke > 0) (void)core.revoke_demand(m.consumer, m.revoke);
        if (m.demand > 0) (void)core.add_demand(m.consumer, m.demand);
        flush(self);
      },
      [=](const cancel_msg& m) -> core::error {
        auto cancelled = self->state.core->cancel(m.task, actor_now(self));
        flush(self);
        return cancelled ? core::error{} : cancelled.err();
      },
      [=](watch_msg& m) {
        auto& core = *self->state.core;
        if (m.stop) return core.unwatch(m.task, m.observer.target.get());
        if (auto ok = core.watch(m.task, m.observer); !ok) m.observer.rejected(ok.err());
      },
      [=](const status_msg& m) -> caf::result<core::task_status> {
        auto status = self->state.core->status(m.task);
        if (!status) return caf::make_error(caf::sec::invalid_argument, status.err().message);
        return *status;
      },
      [=](status_query_msg& m) {
        m.done(self->state.core->status(m.task));
      },
      [=](queue_stats_query_msg& m) { m.done(self->state.core->all_stats()); },
      [=](stats_atom) -> broker_stats {
        const auto& core = *self->state.core;
        broker_stats out;
        out.queues = core.all_stats();
        out.live_tasks = core.live_tasks();
        out.live_bytes = core.live_bytes();
        out.dead_letters = core.dead_letters().size();
        out.stale_reports = self->state.stale_reports;
        return out;
      },
      [=](tick_atom) {
        self->state.timer_armed_for.reset();
        self->state.core->advance(actor_now(self));
        flush(self);
      },
  };
}

}  // namespace drover::actors
