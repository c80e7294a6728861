#include "drover/core/broker_core.hpp"

#include <algorithm>
#include <cassert>

namespace drover::core {

namespace {
/// The most dispatch items a consumer's batch makes room for up front (a
/// runtime asking for 65,535 would otherwise reserve megabytes per round).
constexpr std::size_t dispatch_batch_reserve_max = 256;
}  // namespace

struct broker_core::queue_state {
  std::string name;
  ready_queue ready;
  consumer_set eligible;  // subscribed consumers holding credit
  std::size_t delayed = 0;
  std::size_t leased = 0;
  std::size_t consumers = 0;
  bool in_dispatch_list = false;
  queue_stats counters;

  queue_state(std::string n, balance_policy policy) : name(std::move(n)), eligible(policy) {}
};

struct broker_core::consumer_state {
  consumer_id id;
  std::uint32_t index = 0;
  std::uint32_t credit = 0;
  std::uint32_t in_flight = 0;
  bool eligible = false;           // member of its queues' consumer sets
  std::deque<subscription> subs;   // one per queue; a deque keeps addresses stable
  std::int32_t outbox = -1;        // index into outbox_ during a dispatch round
};

broker_core::broker_core(broker_config config, time_point start)
    : config_(config),
      random_(config.seed),
      leases_(config.timer_resolution, start),
      delays_(config.timer_resolution, 4096, start),
      ttl_timers_(config.timer_resolution, 4096, start),
      dead_letters_(config.dead_letters_max) {
  assert(config_.default_backoff.valid());
  assert(config_.default_max_attempts >= 1);
}

broker_core::~broker_core() = default;

// --- queues and consumers ----------------------------------------------

std::uint32_t broker_core::declare_queue(std::string_view name) {
  if (auto existing = find_queue(name)) return *existing;
  const auto index = static_cast<std::uint32_t>(queues_.size());
  queues_.push_back(std::make_unique<queue_state>(std::string(name), config_.policy));
  queues_.back()->counters.name = std::string(name);
  queue_index_.emplace(std::string(name), index);
  return index;
}

std::optional<std::uint32_t> broker_core::find_queue(std::string_view name) const {
  // Submissions come in runs of one queue: check the last answer first.
  if (last_found_queue_ < queues_.size() && queues_[last_found_queue_]->name == name) return last_found_queue_;
  auto it = queue_index_.find(std::string(name));
  if (it == queue_index_.end()) return std::nullopt;
  last_found_queue_ = it->second;
  return it->second;
}

const std::string& broker_core::queue_name(std::uint32_t queue) const {
  assert(queue < queues_.size());
  return queues_[queue]->name;
}

result<void> broker_core::join(consumer_id id, std::span<const std::string> queue_names) {
  if (!id.valid()) return make_error(errc::invalid_argument, "consumer id 0 is reserved");
  if (consumer_index_.contains(id)) return make_error(errc::invalid_argument, "consumer already joined");
  std::uint32_t index;
  if (!free_consumer_slots_.empty()) {
    index = free_consumer_slots_.back();
    free_consumer_slots_.pop_back();
  } else {
    index = static_cast<std::uint32_t>(consumers_.size());
    consumers_.emplace_back();
  }
  auto state = std::make_unique<consumer_state>();
  state->id = id;
  state->index = index;
  consumers_[index] = std::move(state);
  consumer_index_.emplace(id, index);
  for (const auto& name : queue_names) {
    if (auto subscribed = subscribe(id, name); !subscribed) return subscribed.err();
  }
  return ok();
}

result<std::uint32_t> broker_core::subscribe(consumer_id id, std::string_view queue_name_) {
  consumer_state* consumer = find_consumer(id);
  if (!consumer) return make_error(errc::unknown_consumer, "consumer " + std::to_string(id.value) + " is not joined");
  const auto queue = declare_queue(queue_name_);
  for (const auto& s : consumer->subs)
    if (s.queue == queue) return queue;
  auto& sub = consumer->subs.emplace_back();
  sub.consumer = consumer->index;
  sub.queue = queue;
  ++queues_[queue]->consumers;
  if (consumer->eligible) {
    queues_[queue]->eligible.insert(sub, consumer->in_flight);
    mark_dispatchable(queue);
  }
  return queue;
}

result<void> broker_core::leave(consumer_id id, time_point now) {
  consumer_state* consumer = find_consumer(id);
  if (!consumer) return make_error(errc::unknown_consumer, "consumer " + std::to_string(id.value) + " is not joined");
  consumer->credit = 0;
  refresh_membership(*consumer);
  for (auto& sub : consumer->subs) --queues_[sub.queue]->consumers;
  leases_.release_all(consumer->index, [&](task_record& task) {
    --consumer->in_flight;
    --queues_[task.queue]->leased;
    retry_or_bury(task, make_error(errc::consumer_lost, "consumer " + std::to_string(id.value) + " left"), false, now);
  });
  assert(consumer->in_flight == 0);
  const auto index = consumer->index;
  consumers_[index].reset();
  consumer_index_.erase(id);
  free_consumer_slots_.push_back(index);
  return ok();
}

result<void> broker_core::add_demand(consumer_id id, std::uint32_t n) {
  consumer_state* consumer = find_consumer(id);
  if (!consumer) return make_error(errc::unknown_consumer, "consumer " + std::to_string(id.value) + " is not joined");
  consumer->credit += n;
  refresh_membership(*consumer);
  return ok();
}

result<std::uint32_t> broker_core::revoke_demand(consumer_id id, std::uint32_t n) {
  consumer_state* consumer = find_consumer(id);
  if (!consumer) return make_error(errc::unknown_consumer, "consumer " + std::to_string(id.value) + " is not joined");
  const std::uint32_t taken = std::min(n, consumer->credit);
  consumer->credit -= taken;
  refresh_membership(*consumer);
  return taken;
}

// --- tasks ---------------------------------------------------------------

result<void> validate(const task_spec& spec, std::size_t payload_bytes_max) {
  const auto& o = spec.options;
  if (o.max_attempts > attempts_max)
    return make_error(errc::invalid_argument, "max_attempts must be at most " + std::to_string(attempts_max));
  if (o.backoff && !o.backoff->valid())
    return make_error(errc::invalid_argument, "backoff needs 0 <= initial <= max, multiplier >= 1, 0 <= jitter <= 1");
  if (o.timeout.count() < 0) return make_error(errc::invalid_argument, "timeout must not be negative");
  if (o.timeout > timeout_max) return make_error(errc::invalid_argument, "timeout must be at most 2^32-1 ms (49 days)");
  if (o.ttl.count() < 0) return make_error(errc::invalid_argument, "ttl must not be negative");
  if (spec.payload.size() > payload_bytes_max)
    return make_error(errc::payload_too_large, "payload of " + std::to_string(spec.payload.size()) +
                                                   " bytes exceeds the limit of " + std::to_string(payload_bytes_max));
  return ok();
}

result<submit_ack> broker_core::submit(task_id id, task_spec&& spec, observer_ref&& observer, time_point now) {
  const auto queue = find_queue(spec.queue);
  if (!queue) return make_error(errc::unknown_queue, "queue '" + spec.queue + "' has no consumer and was not declared");
  if (auto valid = validate(spec, config_.payload_bytes_max); !valid) return valid.err();
  if (!id.valid()) return make_error(errc::invalid_argument, "task id zero");

  std::string key_slot;
  if (!spec.options.idempotency_key.empty()) {
    key_slot = idempotency_slot(*queue, spec.options.idempotency_key);
    if (auto it = idempotency_.find(key_slot); it != idempotency_.end()) {
      const task_id original = it->second.id;
      if (observer) {
        observer.accepted(original, true);
        if (it->second.outcome) {
          observer.outcome(*it->second.outcome);
        } else {
          task_record* task = find_task(original);
          assert(task);
          observer.state(task->state, task->attempt);
          task->ensure_extras().more_observers.push_back(std::move(observer));
        }
      }
      return submit_ack{original, true};
    }
  }
  if (tasks_.size() >= config_.max_tasks || live_bytes_ + spec.payload.size() > config_.max_bytes)
    return make_error(errc::queue_full, "the node holds its maximum of queued tasks or bytes");

  // The insert finds a live id itself: no second lookup in the index.
  task_record* inserted = tasks_.insert(id);
  if (!inserted) return make_error(errc::invalid_argument, "task id " + std::to_string(id.value) + " is already in use");
  task_record& task = *inserted;
  auto& o = spec.options;
  task.queue = *queue;
  task.priority = o.priority;
  task.max_attempts = o.max_attempts ? o.max_attempts : config_.default_max_attempts;
  const duration timeout = o.timeout.count() > 0 ? o.timeout : config_.default_timeout;
  // Rounded up to whole milliseconds, at least one.
  task.timeout_ms = static_cast<std::uint32_t>(
      std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::milliseconds>(timeout).count()));
  task.payload = std::move(spec.payload);
  task.observer = std::move(observer.target);
  task.tag_for_observer = observer.tag;
  task.observer_follows_states = task.observer && task.observer->follows_states();
  if (!o.meta.empty()) task.ensure_extras().meta = std::make_shared<const meta_map>(std::move(o.meta));
  if (o.backoff) task.ensure_extras().backoff = o.backoff;
  if (!key_slot.empty()) {
    task.ensure_extras().idempotency_key = key_slot;
    idempotency_.emplace(std::move(key_slot), idempotency_entry{id, std::nullopt});
  }
  live_bytes_ += task.payload.size();
  ++queues_[task.queue]->counters.submitted;
  if (task.observer) task.observed_by().accepted(id, false);

  if (o.ttl.count() > 0) {
    task.ensure_extras().expires_at = now + o.ttl;
    ttl_timers_.schedule(ttl_timer{now + o.ttl, id});
  }
  if (o.not_before && *o.not_before > now) {
    task.delayed = true;
    ++queues_[task.queue]->delayed;
    delays_.schedule(task, *o.not_before);
  } else {
    make_ready(task);
  }
  return submit_ack{id, false};
}

result<void> broker_core::report(consumer_id consumer_id_, task_id id, lease_id lease, attempt_result&& outcome,
                                 time_point now, std::uint32_t slot) {
  task_record* task = tasks_.find(id, slot);
  // The task names its consumer: no lookup of the reporter by id when it is
  // the holder (a cold hash probe per result with 10,000 consumers).
  consumer_state* consumer = task ? consumer_at(task->owner, consumer_id_) : nullptr;
  if (!consumer) consumer = find_consumer(consumer_id_);
  if (!consumer) return make_error(errc::unknown_consumer, "consumer " + std::to_string(consumer_id_.value) + " is not joined");
  if (!task) task = find_task(id);
  if (!task) return make_error(errc::stale_lease, "task " + std::to_string(id.value) + " is no longer live");
  if (auto valid = lease_table::check(*task, consumer->index, lease); !valid) return valid;
  end_lease(*task);
  if (outcome.ok) {
    finish(*task, task_state::succeeded, {}, std::move(outcome.value), now);
  } else if (!outcome.retryable) {
    finish(*task, task_state::failed, make_error(errc::handler_failed, std::move(outcome.message)), {}, now);
  } else {
    retry_or_bury(*task, make_error(errc::handler_failed, std::move(outcome.message)), true, now);
  }
  return ok();
}

result<void> broker_core::cancel(task_id id, time_point now) {
  task_record* task = find_task(id);
  if (!task) return make_error(errc::unknown_task, "task " + std::to_string(id.value) + " is not live");
  if (task->state == task_state::leased) {
    cancels_.push_back(cancel_notice{consumers_[task->owner]->id, task->id, task->lease});
    end_lease(*task);
  } else {
    remove_from_queue(*task);
  }
  finish(*task, task_state::cancelled, make_error(errc::cancelled, "cancelled"), {}, now);
  return ok();
}

result<task_status> broker_core::status(task_id id) const {
  const task_record* task = find_task(id);
  if (!task) return make_error(errc::unknown_task, "task " + std::to_string(id.value) + " is not live");
  return task_status{task->id, task->state, task->attempt, task->max_attempts, task->queue, task->delayed};
}

// --- transitions -------------------------------------------------------

void broker_core::set_state(task_record& task, task_state next) {
  assert(can_transition(task.state, next));
  task.state = next;
}

void broker_core::notify_state(const task_record& task) {
  if (task.observer_follows_states) task.observed_by().state(task.state, task.attempt);
  if (task.extras)
    for (const auto& o : task.extras->more_observers) o.state(task.state, task.attempt);
}

void broker_core::make_ready(task_record& task) {
  assert(task.state == task_state::queued && !task.delayed);
  queues_[task.queue]->ready.push(task);
  mark_dispatchable(task.queue);
}

void broker_core::remove_from_queue(task_record& task) {
  assert(task.state == task_state::queued);
  auto& queue = *queues_[task.queue];
  if (task.delayed) {
    --queue.delayed;
    task.delayed = false;
    delays_.cancel(task);
  } else {
    queue.ready.erase(task);
  }
}

void broker_core::lease_to(task_record& task, consumer_state& consumer, time_point now) {
  assert(consumer.credit > 0);
  ++task.attempt;
  leases_.grant(task, consumer.index, now + task.timeout());
  set_state(task, task_state::leased);
  --consumer.credit;
  ++consumer.in_flight;
  ++queues_[task.queue]->leased;
  refresh_load(consumer);
  if (consumer.credit == 0) refresh_membership(consumer);

  if (consumer.outbox < 0) {
    consumer.outbox = static_cast<std::int32_t>(outbox_.size());
    outbox_.push_back(dispatch_batch{consumer.id, {}});
    outbox_owners_.push_back(consumer.index);
    // Room for what its credit may take this round (it had one more
    // before this task), not grown in doublings per batch.
    outbox_.back().items.reserve(std::min<std::size_t>(std::size_t{consumer.credit} + 1, dispatch_batch_reserve_max));
  }
  outbox_[static_cast<std::size_t>(consumer.outbox)].items.push_back(dispatch_item{
      task.id, task.slot, task.lease, task.attempt, task.queue, task.payload,
      task.extras ? task.extras->meta : nullptr, lease_table::deadline_of(task)});
  notify_state(task);
}

void broker_core::end_lease(task_record& task) {
  consumer_state& consumer = *consumers_[task.owner];
  leases_.release(task);
  assert(consumer.in_flight > 0);
  --consumer.in_flight;
  --queues_[task.queue]->leased;
  refresh_load(consumer);
}

void broker_core::retry_or_bury(task_record& task, error why, bool with_backoff, time_point now) {
  assert(task.state == task_state::leased);
  if (task.attempt >= task.max_attempts) {
    finish(task, task_state::dead, std::move(why), {}, now);
    return;
  }
  task.ensure_extras().last_error = std::move(why);
  set_state(task, task_state::queued);
  auto& queue = *queues_[task.queue];
  ++queue.counters.retried;
  const auto& policy = task.extras && task.extras->backoff ? *task.extras->backoff : config_.default_backoff;
  const duration delay = with_backoff ? backoff_delay(policy, task.attempt + 1u, random_) : duration{0};
  if (delay.count() > 0) {
    task.delayed = true;
    ++queue.delayed;
    delays_.schedule(task, now + delay);
  } else {
    make_ready(task);
  }
  notify_state(task);
}

void broker_core::finish(task_record& task, task_state terminal, error why, bytes value, time_point now) {
  assert(is_terminal(terminal));
  set_state(task, terminal);
  auto& counters = queues_[task.queue]->counters;
  switch (terminal) {
    case task_state::succeeded: ++counters.succeeded; break;
    case task_state::failed: ++counters.failed; break;
    case task_state::dead: ++counters.dead; break;
    case task_state::cancelled: ++counters.cancelled; break;
    case task_state::expired: ++counters.expired; break;
    default: break;
  }
  task_outcome outcome{task.id, terminal, std::move(value), std::move(why), task.attempt};
  if (terminal == task_state::dead) {
    dead_letters_.add(dead_letter{task.id, queues_[task.queue]->name, task.payload, outcome.err, task.attempt});
  }
  live_bytes_ -= task.payload.size();
  observer_ref observer(std::move(task.observer), task.tag_for_observer);
  std::unique_ptr<task_extras> extras = std::move(task.extras);
  if (!task.payload.empty()) retired_.payloads.push_back(std::move(task.payload));
  tasks_.erase(task);  // `task` is a free slot from here on

  if (extras && !extras->idempotency_key.empty()) {
    if (config_.idempotency_retention.count() > 0) {
      idempotency_[extras->idempotency_key].outcome = outcome;
      idempotency_forget_.emplace_back(now + config_.idempotency_retention, extras->idempotency_key);
    } else {
      idempotency_.erase(extras->idempotency_key);
    }
  }
  if (observer) {
    observer.outcome(outcome);
    retired_.observers.push_back(std::move(observer.target));
  }
  if (extras)
    for (const auto& o : extras->more_observers) o.outcome(outcome);
}

result<void> broker_core::watch(task_id id, observer_ref observer) {
  assert(observer);
  task_record* task = find_task(id);
  if (!task) return make_error(errc::unknown_task, "task " + std::to_string(id.value) + " is unknown or has ended");
  observer.state(task->state, task->attempt);
  task->ensure_extras().more_observers.push_back(std::move(observer));
  return ok();
}

void broker_core::unwatch(task_id id, const task_observer* observer) {
  task_record* task = find_task(id);
  if (!task || !task->extras) return;
  auto& list = task->extras->more_observers;
  std::erase_if(list, [&](const observer_ref& o) { return o.target.get() == observer; });
}

retired_refs broker_core::take_retired() {
  retired_refs out = std::exchange(retired_, {});
  // The next batch is likely the size of this one: room for it at once.
  retired_.payloads.reserve(out.payloads.size());
  retired_.observers.reserve(out.observers.size());
  return out;
}

// --- dispatch ------------------------------------------------------------

void broker_core::mark_dispatchable(std::uint32_t queue_index) {
  auto& queue = *queues_[queue_index];
  if (queue.in_dispatch_list || queue.ready.empty() || queue.eligible.empty()) return;
  queue.in_dispatch_list = true;
  dispatch_list_.push_back(queue_index);
}

void broker_core::refresh_membership(consumer_state& consumer) {
  const bool should = consumer.credit > 0;
  if (should == consumer.eligible) return;
  consumer.eligible = should;
  for (auto& sub : consumer.subs) {
    auto& queue = *queues_[sub.queue];
    if (should) {
      queue.eligible.insert(sub, consumer.in_flight);
      mark_dispatchable(sub.queue);
    } else {
      queue.eligible.erase(sub);
    }
  }
}

void broker_core::refresh_load(consumer_state& consumer) {
  if (!consumer.eligible || config_.policy != balance_policy::least_loaded) return;
  for (auto& sub : consumer.subs) queues_[sub.queue]->eligible.set_load(sub, consumer.in_flight);
}

void broker_core::dispatch(time_point now) {
  while (!dispatch_list_.empty()) {
    const std::uint32_t queue_index = dispatch_list_.front();
    dispatch_list_.pop_front();
    auto& queue = *queues_[queue_index];
    queue.in_dispatch_list = false;
    if (queue.ready.empty() || queue.eligible.empty()) continue;
    task_record& task = *queue.ready.pop();
    // Records and payloads went cold while their tasks waited: the next
    // task's payload bookkeeping (its record is warm: the pop touched it)
    // and the record after it start loading here, a turn or two ahead.
    if (const task_record* next = queue.ready.front()) {
      next->payload.prefetch();
      if (next->next) __builtin_prefetch(next->next, 1);
    }
    if (task.expires_at() <= now) {
      finish(task, task_state::expired, make_error(errc::expired, "time to live passed before dispatch"), {}, now);
    } else {
      subscription* sub = queue.eligible.pick();
      lease_to(task, *consumers_[sub->consumer], now);
    }
    mark_dispatchable(queue_index);  // to the back: queues take turns
  }
}

void broker_core::prefetch_record_targets(task_id id, std::uint32_t slot) const {
  const task_record* task = tasks_.find(id, slot);
  if (!task) return;
  tasks_.prefetch_index(id);  // finishing erases the id from the index
  if (task->observer) __builtin_prefetch(task->observer.get(), 1);
  task->payload.prefetch();
}

std::vector<dispatch_batch> broker_core::take_dispatches() {
  for (const auto index : outbox_owners_) consumers_[index]->outbox = -1;
  outbox_owners_.clear();
  return std::exchange(outbox_, {});
}

std::vector<cancel_notice> broker_core::take_cancels() { return std::exchange(cancels_, {}); }

// --- timers ------------------------------------------------------------

void broker_core::advance(time_point now) {
  leases_.expire(now, [&](task_record& task) { on_lease_deadline(task, now); });
  delays_.advance(now, [&](task_record& task) { on_delay_end(task); });
  ttl_timers_.advance(now, [&](const ttl_timer& timer) { on_ttl(timer, now); });
  forget_idempotency(now);
}

void broker_core::on_lease_deadline(task_record& task, time_point now) {
  assert(task.state == task_state::leased);
  cancels_.push_back(cancel_notice{consumers_[task.owner]->id, task.id, task.lease});
  end_lease(task);
  retry_or_bury(task, make_error(errc::timed_out, "attempt " + std::to_string(task.attempt) + " ran past its timeout"),
                true, now);
}

void broker_core::on_delay_end(task_record& task) {
  assert(task.state == task_state::queued && task.delayed);
  task.delayed = false;
  --queues_[task.queue]->delayed;
  make_ready(task);
}

void broker_core::on_ttl(const ttl_timer& timer, time_point now) {
  task_record* task = find_task(timer.task);
  if (!task || task->state != task_state::queued) return;  // dispatched or ended meanwhile
  remove_from_queue(*task);
  finish(*task, task_state::expired, make_error(errc::expired, "time to live passed before dispatch"), {}, now);
}

void broker_core::forget_idempotency(time_point now) {
  while (!idempotency_forget_.empty() && idempotency_forget_.front().first <= now) {
    idempotency_.erase(idempotency_forget_.front().second);
    idempotency_forget_.pop_front();
  }
}

std::optional<time_point> broker_core::next_wakeup() const {
  std::optional<time_point> next = leases_.next_deadline();
  auto consider = [&](std::optional<time_point> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  consider(delays_.next_due());
  consider(ttl_timers_.next_due());
  if (!idempotency_forget_.empty()) consider(idempotency_forget_.front().first);
  return next;
}

// --- lookups and inspection --------------------------------------------

task_record* broker_core::find_task(task_id id) { return tasks_.find(id); }

const task_record* broker_core::find_task(task_id id) const { return tasks_.find(id); }

broker_core::consumer_state* broker_core::find_consumer(consumer_id id) {
  if (auto* last = consumer_at(last_consumer_, id)) return last;
  auto it = consumer_index_.find(id);
  return it == consumer_index_.end() ? nullptr : consumer_at(it->second, id);
}

broker_core::consumer_state* broker_core::consumer_at(std::uint32_t index, consumer_id id) {
  // By index, not pointer: a slot emptied or taken by another consumer
  // since simply misses.
  consumer_state* consumer = index < consumers_.size() ? consumers_[index].get() : nullptr;
  if (!consumer || consumer->id != id) return nullptr;
  last_consumer_ = index;  // the demand a result freed comes right after it
  return consumer;
}

std::string broker_core::idempotency_slot(std::uint32_t queue, std::string_view key) const {
  std::string slot = std::to_string(queue);
  slot.push_back('\0');
  slot.append(key);
  return slot;
}

template <typename F>
void broker_core::for_each_subscription(F&& f) const {
  for (const auto& c : consumers_)
    if (c)
      for (const auto& sub : c->subs) f(*c, sub);
}

queue_stats broker_core::snapshot(const queue_state& queue) {
  queue_stats out = queue.counters;
  out.ready = queue.ready.size();
  out.delayed = queue.delayed;
  out.leased = queue.leased;
  out.consumers = queue.consumers;
  return out;
}

queue_stats broker_core::stats(std::uint32_t queue_index) const {
  assert(queue_index < queues_.size());
  queue_stats out = snapshot(*queues_[queue_index]);
  for_each_subscription([&](const consumer_state& c, const subscription& sub) {
    if (sub.queue == queue_index) out.demand += c.credit;
  });
  return out;
}

std::vector<queue_stats> broker_core::all_stats() const {
  std::vector<queue_stats> out;
  out.reserve(queues_.size());
  for (const auto& queue : queues_) out.push_back(snapshot(*queue));
  // Demand is not kept per queue: credit changes with every dispatch, and a
  // consumer's credit serves all its queues. Inspection sums it instead.
  for_each_subscription([&](const consumer_state& c, const subscription& sub) { out[sub.queue].demand += c.credit; });
  return out;
}

std::optional<consumer_stats> broker_core::consumer(consumer_id id) const {
  auto it = consumer_index_.find(id);
  if (it == consumer_index_.end()) return std::nullopt;
  const auto& c = *consumers_[it->second];
  return consumer_stats{c.id, c.credit, c.in_flight};
}

result<void> broker_core::check_invariants() const {
  auto fail = [](std::string what) { return make_error(errc::invalid_transition, "invariant violated: " + what); };
  std::vector<std::size_t> ready(queues_.size()), delayed(queues_.size()), leased(queues_.size());
  std::vector<std::uint32_t> held(consumers_.size());
  std::size_t bytes_total = 0;
  std::optional<error> violation;
  tasks_.for_each([&](const task_record& task) {
    if (violation) return;
    const auto id = task.id;
    if (is_terminal(task.state)) violation = fail("terminal task " + std::to_string(id.value) + " still live");
    bytes_total += task.payload.size();
    if (task.state == task_state::leased) {
      if (task.owner >= consumers_.size() || !consumers_[task.owner]) {
        violation = fail("task " + std::to_string(id.value) + " leased to a consumer that left");
        return;
      }
      ++leased[task.queue];
      ++held[task.owner];
      if (task.attempt == 0 || task.attempt > task.max_attempts) violation = fail("attempt out of range");
    } else if (task.delayed) {
      ++delayed[task.queue];
    } else {
      ++ready[task.queue];
    }
  });
  if (violation) return *violation;
  if (bytes_total != live_bytes_) return fail("live byte count drifted");
  for (std::size_t q = 0; q < queues_.size(); ++q) {
    const auto& queue = *queues_[q];
    if (queue.ready.size() != ready[q] || queue.delayed != delayed[q] || queue.leased != leased[q])
      return fail("queue '" + queue.name + "' counts disagree with its tasks");
  }
  for (const auto& consumer : consumers_) {
    if (!consumer) continue;
    if (consumer->in_flight != held[consumer->index] || leases_.held_by(consumer->index) != consumer->in_flight)
      return fail("consumer " + std::to_string(consumer->id.value) + " in-flight count disagrees with its leases");
    if (consumer->eligible != (consumer->credit > 0))
      return fail("consumer " + std::to_string(consumer->id.value) + " eligibility disagrees with its credit");
    for (const auto& sub : consumer->subs)
      if (sub.member != consumer->eligible) return fail("subscription membership disagrees with credit");
  }
  return ok();
}

}  // namespace drover::core
