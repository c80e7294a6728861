#include "world_impl.hpp"

namespace drover::sim::detail {

// --- sink and observer: hand over to the world -------------------------------

void sim_sink::joined(core::consumer_id) { w_.on_joined(session_); }
void sim_sink::deliver(std::vector<actors::remote_task> tasks) { w_.on_deliver(session_, std::move(tasks)); }
void sim_sink::revoke(std::vector<core::cancel_notice> notices) { w_.on_revoke(session_, std::move(notices)); }
void sim_sink::refused(core::task_id task, core::lease_id lease, core::error) {
  w_.note("refused task " + std::to_string(task.value) + " lease " + std::to_string(lease.value));
}
void sim_sink::failed(core::error why) { w_.note("consumer failed: " + why.message); }

void sim_watcher::on_accepted(core::task_id, bool, core::observer_tag) {
  w_.note("a watcher was told of acceptance");  // never: shows in the trace if it happens
}
void sim_watcher::on_outcome(const core::task_outcome& outcome, core::observer_tag) {
  told_ = true;
  w_.on_watch_outcome(outcome);
}
void sim_watcher::on_rejected(const core::error&, core::observer_tag) { w_.on_watch_refused(task_); }

void sim_observer::on_accepted(core::task_id id, bool duplicate, core::observer_tag) {
  duplicate_ = duplicate;
  w_.on_accepted(id, duplicate, earliest_start_);
}
void sim_observer::on_outcome(const core::task_outcome& outcome, core::observer_tag) {
  w_.on_outcome(outcome, duplicate_);
  if (ended_) ended_();
}
void sim_observer::on_rejected(const core::error& why, core::observer_tag) {
  w_.on_rejected(why);
  if (ended_) ended_();
}

// --- the loop ----------------------------------------------------------------

void world::advance_to(time_point t) {
  const auto n = now();
  if (t > n) sched_.advance_time(t - n);
}

/// One step: the earliest of the next simulated event and the next actor
/// timer; then every actor message that follows from it.
bool world::step() {
  const auto& timers = sched_.clock().schedule();
  const bool have_event = !events_.empty(), have_timer = !timers.empty();
  if (!have_event && !have_timer) return false;
  const time_point next_event = have_event ? events_.begin()->first.first : time_point::max();
  const time_point next_timer =
      have_timer ? time_point{std::chrono::duration_cast<core::duration>(timers.begin()->first.time_since_epoch())}
                 : time_point::max();
  if (draining_ && !have_event && checker_.ended_count() == checker_.accepted_count()) return false;  // quiescent
  if (next_timer <= next_event) {
    if (next_timer > now()) advance_to(next_timer);
    else sched_.trigger_timeout();
  } else {
    advance_to(next_event);
    auto e = std::move(events_.begin()->second);
    events_.erase(events_.begin());
    e();
  }
  sched_.run();
  return true;
}

sim_result world::run() {
  core::broker_config config;
  config.seed = random_.next();
  config.max_tasks = queue_capacity;
  config.default_timeout = 1s;
  config.default_max_attempts = 3;
  config.default_backoff = core::backoff_policy{20ms, 500ms, 2.0, 0.5};
  broker_ = sys_.spawn(actors::broker_actor, config, nullptr, nullptr);
  for (const char* q : {"a", "b"}) caf::anon_send(broker_, actors::declare_queue_msg{q});
  sched_.run();

  const auto runtimes = 2 + random_.below(3);
  for (std::uint64_t i = 0; i < runtimes; ++i) {
    sim_runtime r;
    r.index = static_cast<int>(i);
    r.capacity = static_cast<std::uint32_t>(1 + random_.below(8));
    r.resumable = random_.chance(0.5);
    if (i == 0) r.queues = {"a", "b"};  // every queue has a runtime
    else r.queues = {random_.chance(0.5) ? "a" : "b"};
    runtimes_.push_back(std::move(r));
  }
  bool polling = false;
  for (auto& r : runtimes_)
    if (r.index > 0 && scenario_.chance(0.4)) {  // the first keeps a WebSocket: every queue has a pushed-to runtime
      const bool sse = scenario_.chance(0.5);
      r.via = sse ? sim_runtime::transport::sse : sim_runtime::transport::long_poll;
      polling = true;
      seen(sse ? "sse_runtimes" : "long_poll_runtimes");
    }
  note("start seed " + std::to_string(options_.seed) + " runtimes " + std::to_string(runtimes) + " faults " + faults_.name);
  for (const auto& r : runtimes_)
    note(runtime_name(r.index) + " capacity " + std::to_string(r.capacity) +
         (r.polls() ? " long-poll" : r.streams() ? " sse" : r.resumable ? " resumable" : ""));
  for (auto& r : runtimes_) {
    if (r.streams()) {
      open_stream(r);
    } else if (r.polls()) {
      r.connected = true;
      claim(r);
    } else {
      connect(r);
    }
  }
  if (polling) at(now() + poll_expiry_period, [this] { expire_poll_sessions(); });
  start_pool();
  open_channels();
  at(now() + 1ms, [this] { submit_tick(); });
  at(now() + 100ms, [this] { fault_tick(); });

  while (checker_.ok()) {
    if (!step()) break;
    checker_.check_broker(broker_core(), now());
    if (!draining_ && ++steps_ >= options_.steps) start_drain();
    if (draining_ && now() > drain_deadline_) break;
  }
  if (checker_.ok()) checker_.check_drained();
  for (const auto& c : channels_)
    if (checker_.ok()) checker_.check_channel(c.id, c.submitted);
  for (const auto& w : watchers_)
    if (checker_.ok() && w->task().value != forgotten_task_) checker_.check_watcher(w->task(), w->taken(), w->told());
  if (checker_.ok()) {
    std::vector<consumer_books> books;
    for (const auto& [id, s] : sessions_)  // a long-poll session's books; its runtime keeps none to compare
      if (s.polling && s.alive)
        books.push_back({s.id, static_cast<std::uint32_t>(s.poll.outstanding()),
                         static_cast<std::uint32_t>(s.poll.ready() + s.poll.unanswered())});
    for (const auto& r : runtimes_) {
      if (r.polls() || r.streams()) continue;
      auto it = sessions_.find(r.attached_to);
      if (!r.connected || !r.joined || it == sessions_.end() || !it->second.alive) continue;
      const auto& book = it->second.book;  // the node's books and the runtime's must agree with the broker's
      books.push_back({it->second.id, static_cast<std::uint32_t>(book.granted()), static_cast<std::uint32_t>(book.in_flight())});
      books.push_back({it->second.id, r.outstanding, static_cast<std::uint32_t>(r.held.size())});
    }
    const auto& pool = pool_state();
    books.push_back({pool_id_, pool.requested, static_cast<std::uint32_t>(pool.running.size() + pool.waiting.size())});
    checker_.check_books(broker_core(), books);
  }
  note(checker_.ok() ? "end ok" : "end violation " + checker_.first()->invariant);

  sim_result out;
  out.seed = options_.seed;
  out.failure = checker_.first();
  out.trace_hash = trace_.hash();
  out.events = trace_.events();
  out.virtual_ms = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now().time_since_epoch()).count());
  out.accepted = checker_.accepted_count();
  out.rejected = rejected_;
  out.ended = checker_.ended_count();
  out.faults_fired = faults_fired_;
  out.workload = workload_;
  out.trace_lines = trace_.lines();
  for (auto& [id, session] : sessions_)
    if (session.alive) caf::anon_send_exit(session.consumer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(pool_, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(broker_, caf::exit_reason::user_shutdown);
  sched_.run();
  return out;
}

/// Faults and submitters stop; partitions heal; crashed runtimes come back
/// as already scheduled. Everything accepted must now end.
void world::start_drain() {
  draining_ = true;
  faults_ = *fault_profile::named("none");
  drain_deadline_ = now() + drain_limit;
  for (auto& r : runtimes_) r.partitioned_until = std::min(r.partitioned_until, now());
  note("drain");
}

// --- links -------------------------------------------------------------------

time_point world::delivery_time(const sim_runtime& r, time_point& after) {
  auto t = std::max(now(), r.partitioned_until) + std::chrono::microseconds(50 + random_.below(250));
  if (chance(faults_.delay)) {
    fired("delay");
    t += draw_ms(0, static_cast<std::uint64_t>(faults_.max_delay_ms));
  }
  after = std::max(after, t);
  return after;
}

void world::to_node(sim_runtime& r, std::string what, std::function<void(sim_runtime&)> send, bool may_duplicate) {
  if (chance(faults_.loss)) {
    fired("loss");
    note(runtime_name(r.index) + " lost " + what);
    return drop(r, "a message was lost", draw_ms(10, 500), false);
  }
  const auto incarnation = r.incarnation;
  const int copies = may_duplicate && chance(faults_.duplicate) ? 2 : 1;
  if (copies == 2) fired("duplicate");
  for (int i = 0; i < copies; ++i)
    at(delivery_time(r, r.last_to_node), [this, index = r.index, incarnation, what, send] {
      auto& rt = runtimes_[static_cast<std::size_t>(index)];
      if (rt.incarnation != incarnation || !rt.connected) return;  // that connection is gone
      note(runtime_name(index) + " -> node " + what);
      send(rt);
    });
}

void world::to_runtime(int runtime, std::uint64_t incarnation, std::string what, std::function<void(sim_runtime&)> receive,
                       bool may_duplicate) {
  auto& r = runtimes_[static_cast<std::size_t>(runtime)];
  if (r.incarnation != incarnation) return;
  if (chance(faults_.loss)) {
    fired("loss");
    note("node lost " + what + " to r" + std::to_string(runtime));
    return drop(r, "a message was lost", draw_ms(10, 500), false);
  }
  const int copies = may_duplicate && chance(faults_.duplicate) ? 2 : 1;
  if (copies == 2) fired("duplicate");
  for (int i = 0; i < copies; ++i)
    at(delivery_time(r, r.last_to_runtime), [this, runtime, incarnation, what, receive] {
      auto& rt = runtimes_[static_cast<std::size_t>(runtime)];
      if (rt.incarnation != incarnation || !rt.connected) return;
      note("node -> r" + std::to_string(runtime) + " " + what);
      receive(rt);
    });
}

// --- runtimes ----------------------------------------------------------------

/// A new connection: its hello resumes the runtime's session when the
/// runtime remembers one and the node still keeps it (parked within the
/// lease TTL), else starts a new session (the gateway's run_runtime_session).
void world::connect(sim_runtime& r) {
  r.connected = true;
  r.last_to_node = r.last_to_runtime = now();
  r.joined = false;
  r.seen.clear();  // a new connection: what it delivers is new, but the leases still held were seen
  for (const auto& [lease, task] : r.held) r.seen.insert(lease);
  const auto name = runtime_name(r.index);
  if (r.resumable && r.session != 0) {
    auto it = sessions_.find(r.session);
    if (it != sessions_.end() && it->second.alive && !it->second.attached) {
      auto& s = it->second;
      s.attached = true;
      r.attached_to = r.session;
      checker_.consumer_resumed(s.id);
      std::vector<actors::held_lease> holding;
      for (const auto& [lease, task] : r.held) holding.push_back({task, lease});
      for (const auto& u : r.unsent) holding.push_back({u.task, u.lease});  // its report is on the way: not to be resent
      const auto res = s.book.resume(holding, r.capacity);
      std::vector<std::uint64_t> cancels;
      for (const auto& c : res.cancel) cancels.push_back(c.lease);
      std::vector<actors::remote_task> resends;
      for (const auto* t : res.resend) resends.push_back(*t);
      note(name + " resumes session " + std::to_string(s.id.value) + " granted " + std::to_string(res.granted) + " resending " +
           std::to_string(resends.size()) + " cancelling " + std::to_string(cancels.size()));
      fired("resume");
      // One message: the welcome and what follows it arrive in this order over one connection.
      return to_runtime(r.index, r.incarnation, "resumed welcome",
                        [this, id = s.id.value, granted = res.granted, cancels, resends](sim_runtime& rt) {
                          welcomed(rt, id, true, granted);
                          receive_cancels(rt, cancels);
                          for (const auto& t : resends) start_attempt(rt, t);
                          top_up(rt);
                        },
                        false);
    }
  }
  auto& s = new_session(r);
  s.book = actors::runtime_session_book(r.capacity);
  r.attached_to = s.id.value;
  note(name + " connects: new session " + std::to_string(s.id.value));
}

node_session& world::new_session(const sim_runtime& r, bool polling) {
  const core::consumer_id id{++next_consumer_};
  auto& s = sessions_[id.value];
  s.runtime = r.index;
  s.id = id;
  s.polling = polling;
  // As the gateway's sessions: a WebSocket one keeps its leases and reports
  // to the broker itself; a polling one reports through the consumer actor.
  s.consumer = sys_.spawn(actors::remote_consumer_actor,
                          actors::remote_consumer_config{id, broker_, r.queues, std::make_shared<sim_sink>(*this, id.value),
                                                         !polling});
  return s;
}

/// The runtime is welcomed into `session`; a new session means whatever it
/// was running for an earlier one is no longer its own.
void world::welcomed(sim_runtime& r, std::uint64_t session, bool resumed, std::uint64_t granted) {
  if (!resumed) {
    r.held.clear();
    r.unsent.clear();
  }
  r.session = session;
  r.joined = true;
  r.outstanding = static_cast<std::uint32_t>(granted);
  for (auto& u : std::exchange(r.unsent, {}))
    to_node(r, "report of lease " + std::to_string(u.lease) + " sent after the resume", u.send, false);
}

void world::receive_cancels(sim_runtime& r, const std::vector<std::uint64_t>& leases) {
  // A connection keeps its order, so a cancel never overtakes its task; one
  // for a lease the runtime finished (or never had) changes nothing.
  for (const auto lease : leases) r.held.erase(lease);
}

/// The connection ends (a crash, a lost message, a partition outlasting the
/// heartbeats). The node parks a resumable runtime's session for the lease
/// TTL and ends any other at once; the runtime keeps running what it holds
/// unless it crashed, and reconnects after `down`.
void world::drop(sim_runtime& r, const std::string& why, core::duration down, bool crash) {
  if (r.streams()) return drop_stream(r, why, down, crash);
  if (!r.connected) return;
  note(runtime_name(r.index) + " drops: " + why);
  r.connected = false;
  r.joined = false;
  ++r.incarnation;
  if (crash) {
    ++r.process;
    r.held.clear();
    r.unsent.clear();
    r.outstanding = 0;
    r.session = 0;
  }
  if (auto* s = attached_session(r)) {
    s->attached = false;
    if (r.resumable && s->joined && lease_ttl.count() > 0) {
      checker_.consumer_died(s->id, now(), lease_ttl + lease_release_bound);
      at(now() + lease_ttl, [this, id = s->id.value] {
        auto& parked = sessions_[id];
        if (parked.alive && !parked.attached) end_session(parked, "lease TTL passed");
      });
    } else {
      end_session(*s, "connection ended");
    }
  }
  at(now() + down, [this, index = r.index] {
    auto& rt = runtimes_[static_cast<std::size_t>(index)];
    if (!rt.connected) connect(rt);
  });
}

/// The session's consumer ends: the broker releases its leases.
void world::end_session(node_session& s, const std::string& why) {
  note("session " + std::to_string(s.id.value) + " ends: " + why);
  s.alive = false;
  caf::anon_send_exit(s.consumer, caf::exit_reason::user_shutdown);
  checker_.consumer_died(s.id, now(), lease_release_bound);
}

void world::top_up(sim_runtime& r) {
  if (!r.connected || !r.joined) return;
  const auto busy = static_cast<std::uint32_t>(r.held.size()) + r.outstanding;
  if (busy >= r.capacity) return;
  const auto n = r.capacity - busy;
  r.outstanding += n;
  to_node(r, "demand " + std::to_string(n), [this, n](sim_runtime& rt) {
    auto* s = attached_session(rt);
    if (!s) return;
    if (!s->book.demand(n)) {  // as the gateway answers: over_capacity, and the demand is ignored
      // A runtime that keeps the protocol's books is never refused.
      checker_.demand_refused(s->id, n, s->book.granted(), s->book.in_flight(), rt.held.size());
      return;
    }
    checker_.demand_sent(s->id, n);
    caf::anon_send(broker_, actors::consumer_update_msg{s->id, {}, n, 0});
  }, false);  // TCP never duplicates; a duplicated demand would be the runtime asking twice
}

void world::on_joined(std::uint64_t session) {
  auto& s = sessions_[session];
  s.joined = true;
  if (!s.attached || s.polling) return;
  auto& r = runtimes_[static_cast<std::size_t>(s.runtime)];
  to_runtime(r.index, r.incarnation, "welcome", [this, session](sim_runtime& rt) {
    welcomed(rt, session, false, 0);
    top_up(rt);
  }, false);
}

void world::on_deliver(std::uint64_t session, std::vector<actors::remote_task> tasks) {
  auto& s = sessions_[session];
  for (const auto& t : tasks) {
    checker_.dispatched(s.id, t.item.id, t.item.lease, now());
    note("dispatch task " + std::to_string(t.item.id.value) + " lease " + std::to_string(t.item.lease.value) + " attempt " +
         std::to_string(t.item.attempt) + " to session " + std::to_string(session));
    if (!s.polling) s.book.delivered(t);
  }
  if (s.polling) {
    s.poll.delivered(std::move(tasks));
    if (s.waiting) answer_claim(s);
    if (s.streaming) send_events(s, s.poll.stream_ready(), "tasks", std::nullopt);
    return;
  }
  if (!s.attached) return;  // kept in the books: sent again when the runtime resumes
  auto& r = runtimes_[static_cast<std::size_t>(s.runtime)];
  to_runtime(r.index, r.incarnation, std::to_string(tasks.size()) + " tasks", [this, tasks](sim_runtime& rt) {
    for (const auto& t : tasks) start_attempt(rt, t);
  }, true);
}

void world::on_revoke(std::uint64_t session, std::vector<core::cancel_notice> notices) {
  auto& s = sessions_[session];
  std::vector<std::uint64_t> leases;
  for (const auto& n : notices) {
    if (s.polling) {
      s.poll.revoked(n.lease);
      leases.push_back(n.lease.value);
    } else if (s.book.ended(n.lease.value)) {  // every cancel comes: those for leases reported on are dropped
      leases.push_back(n.lease.value);
    }
  }
  if (s.polling) {
    // A waiting claim answers with the cancels; a stream sends them as events.
    if (!s.poll.has_cancels()) return;
    if (s.waiting) return answer_claim(s);
    if (s.streaming) send_events(s, {}, "cancels", std::nullopt);
    return;
  }
  if (!s.attached || leases.empty()) return;  // a resume's holding list brings the cancel
  std::string text;
  for (const auto l : leases) text += " " + std::to_string(l);
  auto& r = runtimes_[static_cast<std::size_t>(s.runtime)];
  to_runtime(r.index, r.incarnation, "cancel lease" + text, [this, leases](sim_runtime& rt) {
    receive_cancels(rt, leases);
    top_up(rt);
  }, true);
}

/// A task arrives at a runtime: its handler succeeds, fails, hangs or runs
/// past its lease, as the faults draw.
void world::start_attempt(sim_runtime& r, const actors::remote_task& t) {
  const auto lease = t.item.lease.value, task = t.item.id.value;
  if (!r.seen.insert(lease).second) return;  // a duplicated delivery
  if (r.outstanding > 0) --r.outstanding;
  r.held.emplace(lease, task);
  const auto slot = t.item.slot;
  const auto process = r.process;
  auto finish = [this, index = r.index, process, task, lease, slot](bool ok) {
    return [this, index, process, task, lease, slot, ok] {
      finish_attempt(runtimes_[static_cast<std::size_t>(index)], process, task, lease, slot, ok);
    };
  };
  run_remote_handler(t.item.deadline, finish);
}

/// A remote handler's fate, as the faults draw: it hangs (never answers; the
/// lease runs out and the slot stays taken, as a hung thread's would), answers
/// after its lease ran out, fails, or succeeds.
void world::run_remote_handler(time_point deadline, const std::function<event(bool ok)>& finish) {
  if (chance(faults_.handler_hang)) {
    fired("handler_hang");
    return;
  }
  if (chance(faults_.handler_slow)) {
    fired("handler_slow");
    return at(std::max(now(), deadline) + draw_ms(1, 500), finish(true));
  }
  const bool ok = !chance(faults_.handler_failure);
  if (!ok) fired("handler_failure");
  at(now() + draw_ms(1, 50), finish(ok));
}

void world::finish_attempt(sim_runtime& r, std::uint64_t process, std::uint64_t task, std::uint64_t lease,
                           std::uint32_t slot, bool ok) {
  if (r.process != process || !r.held.count(lease)) return;  // cancelled, or the process died
  r.held.erase(lease);
  auto result = ok ? core::attempt_result::success(core::bytes::copy_from("lease=" + std::to_string(lease)))
                   : core::attempt_result::failure("simulated failure", true);
  auto report = [task, lease, slot, result, this](sim_runtime& rt) {
    auto* s = attached_session(rt);
    if (!s) return;
    // As the gateway does: a report for a lease the session no longer
    // holds (a duplicate, or one revoked meanwhile) is refused there.
    if (!s->book.reported(task, lease)) return note("refused task " + std::to_string(task) + " lease " + std::to_string(lease));
    caf::anon_send(broker_, actors::consumer_update_msg{
                                s->id, {actors::report_item{core::task_id{task}, core::lease_id{lease}, result, slot}}, 0, 0});
  };
  if (!r.connected || !r.joined) {
    r.unsent.push_back({task, lease, report});  // goes out after a resume (dropped if the session is new)
    return;
  }
  to_node(r, std::string(ok ? "result" : "failure") + " task " + std::to_string(task) + " lease " + std::to_string(lease),
          report, true);
  top_up(r);
}

// --- the worker pool -------------------------------------------------------------

/// What a handler awaits on virtual time (a sleep, its children's outcomes):
/// `arm` gets the callback that completes the wait, which is then posted to
/// the coroutine's executor (the pool). Like an asio timer it honours
/// cancellation: when the pool cancels the handler (its lease was revoked)
/// the wait ends at once with operation_aborted.
template <class Token>
auto world::wait_until_called(std::function<void(std::function<void()>)> arm, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code)>(
      [this, arm = std::move(arm)](auto handler) {
        using handler_type = decltype(handler);
        struct sleeper {
          explicit sleeper(handler_type&& h) : handler(std::move(h)) {}
          handler_type handler;
          bool done = false;
          void finish(std::error_code ec) {
            if (std::exchange(done, true)) return;
            asio::get_associated_cancellation_slot(handler).clear();
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler), ec]() mutable { std::move(h)(ec); });
          }
        };
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto state = std::make_shared<sleeper>(std::move(handler));
        if (slot.is_connected())
          slot.assign([this, weak = std::weak_ptr<sleeper>(state)](asio::cancellation_type) {
            if (auto s = weak.lock()) {
              seen("handler_cancelled");  // not a fault: its lease ended (a timeout, a cancel, a lower limit)
              s->finish(asio::error::operation_aborted);
            }
          });
        arm([state] { state->finish({}); });
      },
      token);
}

template <class Token>
auto world::sleep_for(core::duration d, Token&& token) {
  return wait_until_called([this, d](std::function<void()> done) { at(now() + d, std::move(done)); },
                           std::forward<Token>(token));
}

/// A parent handler's children: submitted as a handler submits them (a
/// retried parent uses the same idempotency keys, so it finds its first
/// children instead of making more); completes when each has ended.
template <class Token>
auto world::await_children(std::uint64_t parent, Token&& token) {
  struct join {
    std::uint64_t remaining = 0;
    std::function<void()> done;
  };
  auto j = std::make_shared<join>();
  j->remaining = 1 + scenario_.below(3);
  seen("child_tasks", j->remaining);
  const auto count = j->remaining;
  for (std::uint64_t i = 0; i < count; ++i) {
    core::task_spec spec;
    spec.queue = scenario_.chance(0.5) ? "a" : "b";
    spec.payload = core::bytes::copy_from("child");
    spec.options.priority = static_cast<std::uint8_t>(scenario_.below(4));
    spec.options.max_attempts = static_cast<std::uint16_t>(1 + scenario_.below(3));
    spec.options.timeout = std::chrono::milliseconds(200 + scenario_.below(1300));
    if (scenario_.chance(0.7)) spec.options.idempotency_key = "child-" + std::to_string(parent) + "-" + std::to_string(i);
    const auto id = ++next_task_;
    note("task " + std::to_string(parent) + " submits child " + std::to_string(id) + " queue " + spec.queue +
         (spec.options.idempotency_key.empty() ? "" : " key " + spec.options.idempotency_key));
    auto ended = [j] {
      if (j->remaining > 0 && --j->remaining == 0 && j->done) j->done();
    };
    caf::anon_send(broker_, actors::submit_msg{core::task_id{id}, std::move(spec),
                                               std::make_shared<sim_observer>(*this, now(), std::move(ended))});
  }
  return wait_until_called(
      [j](std::function<void()> done) {
        if (j->remaining == 0) return done();
        j->done = std::move(done);
      },
      std::forward<Token>(token));
}

void world::start_pool() {
  pool_id_ = core::consumer_id{++next_consumer_};
  const auto limit = static_cast<std::uint32_t>(1 + random_.below(8));
  pool_ = sys_.spawn(actors::pool_actor, actors::pool_config{pool_id_, limit, broker_, &services_, pool_context_});
  auto fn = [this](actors::task_context& t) { return pool_attempt(t); };
  for (const char* q : {"a", "b"}) caf::anon_send(pool_, actors::register_msg{q, fn});
  note("pool joins as consumer " + std::to_string(pool_id_.value) + " limit " + std::to_string(limit));
}

/// One attempt in the pool: counted against the work limit in force while
/// it runs; succeeds, fails, throws or outlives its lease, as drawn.
asio::awaitable<actors::task_result> world::pool_attempt(actors::task_context& t) {
  const auto lease = t.item().lease.value, task = t.id().value;
  const auto limit = pool_state().config.work_limit;
  ++pool_running_;
  struct release {
    std::uint32_t& running;
    ~release() { --running; }
  } guard{pool_running_};
  checker_.handler_started(pool_id_, pool_running_, limit, task);
  checker_.started_in_pool(t.id(), t.item().lease, now());
  note("pool starts task " + std::to_string(task) + " lease " + std::to_string(lease) + " running " +
       std::to_string(pool_running_) + "/" + std::to_string(limit));
  core::duration d = draw_ms(1, 50);
  const bool slow = chance(faults_.handler_slow);
  if (slow) {
    fired("handler_slow");
    d = std::max(now(), t.deadline()) - now() + draw_ms(1, 500);
  }
  const bool fail = !slow && chance(faults_.handler_failure);
  const bool throws = fail && random_.chance(0.5);
  if (fail) fired(throws ? "handler_throw" : "handler_failure");
  if (!slow && !fail && scenario_.chance(0.15)) {
    if (scenario_.chance(0.5)) {
      co_await await_children(task, asio::use_awaitable);  // holding its permit, as a handler may
    } else {
      seen("handlers_parked");
      note("pool parks task " + std::to_string(task) + " without its permit");
      {
        --pool_running_;  // a parked handler does not count against the limit
        struct unpark {
          std::uint32_t& running;
          ~unpark() { ++running; }
        } back{pool_running_};
        co_await t.without_permit(await_children(task, asio::use_awaitable));
      }
      const auto limit_now = pool_state().config.work_limit;
      checker_.handler_started(pool_id_, pool_running_, limit_now, task);
      note("pool resumes task " + std::to_string(task) + " running " + std::to_string(pool_running_) + "/" +
           std::to_string(limit_now));
    }
  }
  co_await sleep_for(d, asio::use_awaitable);
  if (throws) throw std::runtime_error("simulated handler exception");
  if (fail) co_return actors::task_result::failure("simulated failure", true);
  co_return actors::task_result::success(core::bytes::copy_from("lease=" + std::to_string(lease)));
}

// --- workload and faults -------------------------------------------------------

void world::submit_tick() {
  if (draining_) return;
  if (chance(faults_.burst)) {
    fired("burst");
    note("burst");
    for (int i = 0; i < 150; ++i) submit_one();
  } else {
    submit_one();
  }
  at(now() + std::chrono::microseconds(200 + random_.below(5000)), [this] { submit_tick(); });
}

void world::submit_one() {
  core::task_spec spec;
  spec.queue = random_.chance(0.5) ? "a" : "b";
  spec.payload = core::bytes::copy_from("p");
  auto& o = spec.options;
  o.priority = static_cast<std::uint8_t>(random_.below(4));
  o.max_attempts = static_cast<std::uint16_t>(1 + random_.below(4));
  o.timeout = draw_ms(200, 1500);
  time_point earliest = now();
  if (random_.chance(0.15)) {
    earliest = now() + draw_ms(1, 2000);
    o.not_before = earliest;
  }
  if (random_.chance(0.05)) o.ttl = draw_ms(100, 3000);
  if (random_.chance(0.1)) o.idempotency_key = "k" + std::to_string(random_.below(8));
  const auto id = ++next_task_;
  auto* ch = pick_channel();
  if (ch && !ch->book.has_room()) {
    seen("window_full");  // refused as the gateway refuses it; the client waits for outcomes
    return note("channel " + std::to_string(ch->id) + " window full: task " + std::to_string(id) + " not submitted");
  }
  std::function<void()> ended;
  if (ch) {
    const auto seq = ch->book.submitted();
    ++ch->submitted;
    ended = [this, index = static_cast<std::size_t>(ch - channels_.data()), seq] {
      auto& c = channels_[index];
      c.book.finished(seq, seq, [&](std::uint64_t s) {
        note("channel " + std::to_string(c.id) + " delivers submission " + std::to_string(s));
        seen("channel_outcomes");
        checker_.channel_delivered(c.id, c.ordered, s);
      });
    };
  }
  note("submit " + std::to_string(id) + " queue " + spec.queue + " priority " + std::to_string(o.priority) +
       (o.idempotency_key.empty() ? "" : " key " + o.idempotency_key) +
       (ch ? " channel " + std::to_string(ch->id) : std::string()));
  caf::anon_send(broker_, actors::submit_msg{core::task_id{id}, std::move(spec),
                                             std::make_shared<sim_observer>(*this, earliest, std::move(ended))});
}

/// 1-3 client channels, ordered or not, with windows of 10-200: half of the
/// submits go through one (the others come from the embedded API).
void world::open_channels() {
  const auto n = 1 + scenario_.below(3);
  for (std::uint64_t i = 0; i < n; ++i) {
    const bool ordered = scenario_.chance(0.5);
    const auto window = 10 + scenario_.below(191);
    // Test-only: a gateway that ignores the order a client asked for.
    const bool book_ordered = ordered && options_.inject != "client_channel_ignores_order";
    channels_.push_back(sim_channel{i + 1, actors::client_channel<std::uint64_t>(window, book_ordered), ordered, 0});
    note("channel " + std::to_string(i + 1) + " window " + std::to_string(window) + (ordered ? " ordered" : ""));
  }
}

sim_channel* world::pick_channel() {
  if (channels_.empty() || !scenario_.chance(0.5)) return nullptr;
  return &channels_[scenario_.below(channels_.size())];
}

void world::on_accepted(core::task_id id, bool duplicate, time_point earliest_start) {
  checker_.accepted(id, earliest_start, duplicate);
  note("accepted " + std::to_string(id.value) + (duplicate ? " (duplicate)" : ""));
  if (!duplicate && scenario_.chance(0.1)) {
    // Someone follows the task by id a while later (as GET /v1/tasks/{id}/events does).
    at(now() + std::chrono::milliseconds(scenario_.below(2000)), [this, id] {
      note("watch " + std::to_string(id.value));
      auto w = std::make_shared<sim_watcher>(*this, id);
      watchers_.push_back(w);
      caf::anon_send(broker_, actors::watch_msg{id, std::move(w)});
    });
  }
  if (duplicate || !chance(faults_.cancel)) return;
  fired("cancel");
  at(now() + draw_ms(0, 1500), [this, id] {
    note("cancel " + std::to_string(id.value));
    caf::anon_send(broker_, actors::cancel_msg{id});
  });
}

void world::on_outcome(const core::task_outcome& o, bool duplicate) {
  if (options_.inject == "forget_outcome" && !forgot_outcome_ && !duplicate) {
    forgot_outcome_ = true;  // test-only: the node "loses" one task
    forgotten_task_ = o.id.value;
    return;
  }
  note("outcome " + std::to_string(o.id.value) + " " + core::to_string(o.state) + " attempts " + std::to_string(o.attempts));
  checker_.outcome(o.id, o.state, o.value.view(), duplicate);
}

void world::on_watch_outcome(const core::task_outcome& o) {
  note("watcher hears " + std::to_string(o.id.value) + " " + core::to_string(o.state));
  seen("watched_outcomes");
  if (o.id.value != forgotten_task_) checker_.outcome(o.id, o.state, o.value.view(), true);
}

void world::on_watch_refused(core::task_id task) {
  note("watch of " + std::to_string(task.value) + " refused");
  seen("watches_refused");
  if (task.value != forgotten_task_) checker_.watch_refused(task);
}

void world::fault_tick() {
  if (draining_) return;
  for (auto& r : runtimes_) {
    if (!r.connected) continue;
    if (chance(faults_.crash * 0.1)) {
      fired("crash");
      if (r.polls()) crash_poller(r, draw_ms(100, 5000));
      else drop(r, "crash", draw_ms(100, 5000), true);
    } else if (chance(faults_.partition * 0.1)) {
      fired("partition");
      const auto length = draw_ms(200, 4000);
      r.partitioned_until = now() + length;
      note(runtime_name(r.index) + " partitioned for " + std::to_string(length.count() / 1'000'000) + " ms");
      if (length > 2 * heartbeat && !r.polls())  // the node misses two pongs and drops it; it reconnects after the partition
        at(now() + 2 * heartbeat, [this, index = r.index, incarnation = r.incarnation, heal = r.partitioned_until] {
          auto& rt = runtimes_[static_cast<std::size_t>(index)];
          if (rt.incarnation == incarnation) drop(rt, "partition outlasted the heartbeats", heal - now(), false);
        });
    }
  }
  if (chance(faults_.limit_change * 0.1)) {
    fired("limit_change");
    const auto limit = static_cast<std::uint32_t>(1 + random_.below(8));
    note("pool limit " + std::to_string(limit));
    caf::anon_send(pool_, actors::limit_atom::value, limit);
  }
  at(now() + 100ms, [this] { fault_tick(); });
}

}  // namespace drover::sim::detail

namespace drover::sim {

sim_result run(const sim_options& options) {
  detail::world w(options);
  return w.run();
}

}  // namespace drover::sim
