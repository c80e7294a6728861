#include "drover/sim/invariant_checker.hpp"

#include <charconv>

namespace drover::sim {

namespace {

std::string ms(core::time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count() / 1000.0) + " ms";
}

}  // namespace

void invariant_checker::fail(std::string invariant, std::string detail) {
  if (!first_) first_ = violation{std::move(invariant), std::move(detail)};
}

void invariant_checker::accepted(core::task_id task, core::time_point earliest_start, bool duplicate) {
  if (duplicate) {
    if (!tasks_.count(task.value)) fail("unknown_task", "a duplicate submit was matched to task " + std::to_string(task.value) + ", never accepted");
    return;
  }
  auto [it, added] = tasks_.try_emplace(task.value, task_facts{earliest_start, {}, false, core::task_state::queued});
  if (!added) fail("task_accepted_twice", "task " + std::to_string(task.value) + " was accepted twice");
}

void invariant_checker::demand_sent(core::consumer_id consumer, std::uint32_t n) { unfilled_demand_[consumer.value] += n; }

/// The task side of a lease: the task exists, has not ended, its delay is
/// over. Lease ids only grow (fencing tokens): the highest seen is current.
bool invariant_checker::leased(core::task_id task, core::lease_id lease, core::time_point now) {
  const auto id = std::to_string(task.value);
  auto it = tasks_.find(task.value);
  if (it == tasks_.end()) return fail("unknown_task", "task " + id + " was leased but never accepted"), false;
  auto& t = it->second;
  if (t.ended) return fail("dispatch_after_end", "task " + id + " was leased after it ended " + core::to_string(t.state)), false;
  if (now < t.earliest_start)
    return fail("delayed_task_ran_early", "task " + id + " was leased at " + ms(now) + ", before its delay ended at " + ms(t.earliest_start)),
           false;
  t.last_lease = std::max(t.last_lease, lease);
  return true;
}

void invariant_checker::demand_refused(core::consumer_id consumer, std::uint32_t n, std::uint64_t node_granted,
                                       std::size_t node_held, std::size_t runtime_held) {
  fail("demand_refused", "session " + std::to_string(consumer.value) + ": demand " + std::to_string(n) +
                             " refused as over capacity; the node counts " + std::to_string(node_granted) + " granted and " +
                             std::to_string(node_held) + " held, the runtime holds " + std::to_string(runtime_held));
}

void invariant_checker::dispatched(core::consumer_id consumer, core::task_id task, core::lease_id lease, core::time_point now) {
  if (!leased(task, lease, now)) return;
  if (--unfilled_demand_[consumer.value] < 0)
    fail("more_than_demanded",
         "consumer " + std::to_string(consumer.value) + " got task " + std::to_string(task.value) + " beyond the demand it signalled");
}

void invariant_checker::started_in_pool(core::task_id task, core::lease_id lease, core::time_point now) { leased(task, lease, now); }

void invariant_checker::outcome(core::task_id task, core::task_state state, std::string_view value, bool for_duplicate) {
  const auto id = std::to_string(task.value);
  auto it = tasks_.find(task.value);
  if (it == tasks_.end()) return fail("unknown_task", "an outcome for task " + id + ", never accepted");
  auto& t = it->second;
  if (!core::is_terminal(state)) return fail("outcome_not_terminal", "task " + id + " ended in " + core::to_string(state));
  if (for_duplicate) {  // a duplicate submit's observer hears the same ending
    if (t.ended && t.state != state)
      fail("outcomes_disagree", "task " + id + " ended " + core::to_string(t.state) + " but a duplicate heard " + core::to_string(state));
    return;
  }
  if (t.ended)
    return fail("completed_twice", "task " + id + " ended " + core::to_string(t.state) + " and again " + core::to_string(state));
  t.ended = true;
  t.state = state;
  ++ended_;
  if (state != core::task_state::succeeded) return;
  std::uint64_t lease = 0;
  const auto digits = value.substr(value.find('=') == std::string_view::npos ? value.size() : value.find('=') + 1);
  std::from_chars(digits.data(), digits.data() + digits.size(), lease);
  if (lease != t.last_lease.value)
    fail("stale_attempt_recorded", "task " + id + " succeeded with the result of lease " + std::to_string(lease) +
                                       ", but its latest lease was " + std::to_string(t.last_lease.value));
}

void invariant_checker::consumer_died(core::consumer_id consumer, core::time_point now, core::duration bound) {
  // Told twice (a crash, then the session's end), the earlier bound holds.
  const auto deadline = now + bound;
  auto [it, fresh] = dead_.emplace(consumer.value, deadline);
  if (!fresh) it->second = std::min(it->second, deadline);
}

void invariant_checker::consumer_resumed(core::consumer_id consumer) { dead_.erase(consumer.value); }

void invariant_checker::handler_started(core::consumer_id pool, std::uint32_t running, std::uint32_t limit,
                                            std::uint64_t task) {
  if (running > limit)
    fail("work_limit_exceeded", "pool " + std::to_string(pool.value) + " started or resumed task " + std::to_string(task) + " with " +
                                    std::to_string(running) + " handlers running under a limit of " + std::to_string(limit));
}

void invariant_checker::check_broker(const core::broker_core& broker, core::time_point now) {
  if (first_) return;
  if (auto r = broker.check_invariants(); !r) return fail("broker_invariant", r.err().message);
  for (auto it = dead_.begin(); it != dead_.end();) {
    if (!broker.consumer(core::consumer_id{it->first})) {
      it = dead_.erase(it);  // released
      continue;
    }
    if (now > it->second)
      return fail("dead_consumer_kept_leases", "consumer " + std::to_string(it->first) + " should have been released by " +
                                                   ms(it->second) + " and the broker still counts it at " + ms(now));
    ++it;
  }
}

void invariant_checker::check_books(const core::broker_core& broker, const std::vector<consumer_books>& consumers) {
  for (const auto& c : consumers) {
    const auto id = std::to_string(c.id.value);
    auto view = broker.consumer(c.id);
    if (!view) return fail("credit_leak", "live consumer " + id + " is unknown to the broker");
    if (view->credit != c.outstanding_demand || view->in_flight != c.held)
      return fail("credit_leak", "consumer " + id + ": the broker counts credit " + std::to_string(view->credit) + " and " +
                                     std::to_string(view->in_flight) + " in flight; the consumer awaits " +
                                     std::to_string(c.outstanding_demand) + " and holds " + std::to_string(c.held));
  }
}

void invariant_checker::channel_delivered(std::uint64_t channel, bool ordered, std::uint64_t seq) {
  auto& c = channels_[channel];
  if (!c.delivered.insert(seq).second)
    return fail("outcome_delivered_twice", "channel " + std::to_string(channel) + " delivered the outcome of submission " +
                                               std::to_string(seq) + " twice");
  const std::uint64_t expected = c.last ? *c.last + 1 : 0;
  if (ordered && seq != expected)
    return fail("outcome_out_of_order", "ordered channel " + std::to_string(channel) + " delivered submission " +
                                            std::to_string(seq) + " before " + std::to_string(expected));
  c.last = std::max(c.last.value_or(0), seq);
}

void invariant_checker::check_channel(std::uint64_t channel, std::uint64_t submitted) {
  const auto delivered = channels_.count(channel) ? channels_.at(channel).delivered.size() : 0;
  if (delivered != submitted)
    fail("outcome_not_delivered", "channel " + std::to_string(channel) + " delivered " + std::to_string(delivered) +
                                      " of its " + std::to_string(submitted) + " submissions' outcomes");
}

void invariant_checker::watch_refused(core::task_id task) {
  auto it = tasks_.find(task.value);
  if (it != tasks_.end() && !it->second.ended)
    fail("watch_refused_while_live", "a watcher of task " + std::to_string(task.value) + " was refused before the task ended");
}

void invariant_checker::check_watcher(core::task_id task, bool taken, bool told) {
  if (taken && !told) fail("watcher_not_told", "a watcher of task " + std::to_string(task.value) + " never heard its outcome");
}

void invariant_checker::check_drained() {
  for (const auto& [id, t] : tasks_)
    if (!t.ended) return fail("lost_task", "task " + std::to_string(id) + " was accepted and never ended (liveness)");
}

}  // namespace drover::sim
