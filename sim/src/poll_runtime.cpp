// Long-poll runtimes in the simulation: a runtime claims tasks with
// `POST /v1/runtime/claim` (max, wait_ms, its session once it has one) and
// reports with `POST /v1/runtime/results`; the node's side is the gateway's
// poll session, with the same books (actors::poll_session_book) and the
// same remote-consumer actor as in production. Each request can be lost on
// the way (the node never sees it) or on the way back (the node acted, the
// runtime sees an error and tries again), so results arrive twice and
// claimed tasks go unseen until their leases run out.
#include "world_impl.hpp"

namespace drover::sim::detail {

void world::http(sim_runtime& r, std::string what, std::function<void(std::function<void(http_answer)>)> at_node,
                 std::function<void(sim_runtime&, http_answer)> answered) {
  const auto index = r.index;
  const auto process = r.process;
  // What the runtime sees, unless its process died in the meantime.
  auto reply = [this, index, process, answered](http_answer a) {
    auto& rt = runtimes_[static_cast<std::size_t>(index)];
    if (rt.process != process) return;
    answered(rt, std::move(a));
  };
  if (chance(faults_.loss)) {
    fired("loss");
    note(runtime_name(r.index) + " lost request " + what);
    return at(now() + draw_ms(10, 500), [reply] { reply(http_answer{}); });
  }
  // A request sent just before a crash still reaches the node.
  at(delivery_time(r, r.last_to_node), [this, index, what, at_node, reply] {
    note(runtime_name(index) + " -> node " + what);
    at_node([this, index, what, reply](http_answer a) {
      auto& rt = runtimes_[static_cast<std::size_t>(index)];
      if (chance(faults_.loss)) {
        fired("loss");
        note("node lost the answer to " + what + " of " + runtime_name(rt.index));
        return at(now() + draw_ms(10, 500), [reply] { reply(http_answer{}); });
      }
      at(delivery_time(rt, rt.last_to_runtime), [this, index, what, reply, a = std::move(a)]() mutable {
        note("node -> " + runtime_name(index) + " answer " + std::to_string(a.status) +
             " to " + what + " with " + std::to_string(a.tasks.size()) + " tasks");
        reply(std::move(a));
      });
    });
  });
}

// --- the runtime's side ----------------------------------------------------------

/// Claims what its free capacity allows (reports not yet answered still
/// count: their leases are the runtime's until the node has them).
void world::claim(sim_runtime& r) {
  if (r.down || r.claiming || workload_done()) return;
  const auto in_use = r.held.size() + r.finished.size() + r.posting.size();
  if (in_use >= r.capacity) return;
  const auto max = r.capacity - in_use;
  const auto wait = draw_ms(0, static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(claim_wait_max).count()));
  r.claiming = true;
  seen("claims");
  const auto session = r.session;
  http(r, "claim max " + std::to_string(max) + " session " + std::to_string(session),
       [this, index = r.index, session, max, wait](std::function<void(http_answer)> answer) {
         node_claim(index, session, max, wait, std::move(answer));
       },
       [this](sim_runtime& rt, http_answer a) { claimed(rt, std::move(a)); });
}

void world::claimed(sim_runtime& r, http_answer a) {
  r.claiming = false;
  if (a.status == 404) {  // the session ended (idle): its leases went back; start anew
    r.session = 0;
    r.finished.clear();
  } else if (a.status == 200) {
    r.session = a.session;
    receive_cancels(r, a.cancels);
    for (const auto& t : a.tasks) start_poll_attempt(r, t);
  }
  if (a.status == 200 && !a.tasks.empty()) return claim(r);
  // Nothing came (or an error): claim again after a pause, as a client's
  // retry loop does, rather than spinning.
  at(now() + draw_ms(10, 200), [this, index = r.index, process = r.process] {
    auto& rt = runtimes_[static_cast<std::size_t>(index)];
    if (rt.process == process) claim(rt);
  });
}

void world::start_poll_attempt(sim_runtime& r, const actors::remote_task& t) {
  const auto lease = t.item.lease.value, task = t.item.id.value;
  r.held.emplace(lease, task);
  const auto slot = t.item.slot;
  auto finish = [this, index = r.index, process = r.process, task, lease, slot](bool ok) {
    return [this, index, process, task, lease, slot, ok] {
      auto& rt = runtimes_[static_cast<std::size_t>(index)];
      if (rt.process != process || !rt.held.erase(lease)) return;
      auto result = ok ? core::attempt_result::success(core::bytes::copy_from("lease=" + std::to_string(lease)))
                       : core::attempt_result::failure("simulated failure", true);
      rt.finished.push_back(actors::remote_report{core::task_id{task}, core::lease_id{lease}, std::move(result), slot});
      post_results(rt);
    };
  };
  run_remote_handler(t.item.deadline, finish);
}

void world::post_results(sim_runtime& r) {
  if (r.down || r.reporting || r.finished.empty() || r.session == 0) return;
  r.reporting = true;
  r.posting = std::exchange(r.finished, {});
  std::string leases;
  for (const auto& p : r.posting) leases += " " + std::to_string(p.lease.value);
  http(r, "results for lease" + leases,
       [this, session = r.session, reports = r.posting](std::function<void(http_answer)> answer) {
         node_results(session, reports, std::move(answer));
       },
       [this](sim_runtime& rt, http_answer a) { results_answered(rt, std::move(a)); });
}

void world::results_answered(sim_runtime& r, http_answer a) {
  r.reporting = false;
  if (a.status == 0) {  // unknown whether the node has them: send them again
    r.finished.insert(r.finished.begin(), r.posting.begin(), r.posting.end());
    r.posting.clear();
    return at(now() + draw_ms(10, 200), [this, index = r.index, process = r.process] {
      auto& rt = runtimes_[static_cast<std::size_t>(index)];
      if (rt.process == process) post_results(rt);
    });
  }
  r.posting.clear();  // 202, or 404: the session ended and its leases went back
  receive_cancels(r, a.cancels);
  if (a.status == 404 && r.polls()) r.session = 0;  // a stream learns it from its own 404
  post_results(r);
  if (r.polls()) claim(r);
  else ask_more(r);
}

/// The process dies with what it holds; it restarts after `down` and opens
/// a new session. Its old session hears nothing more and ends when idle.
void world::crash_poller(sim_runtime& r, core::duration down) {
  note(runtime_name(r.index) + " crashes");
  r.connected = false;
  lose_polling_process(r);
  at(now() + down, [this, index = r.index] {
    auto& rt = runtimes_[static_cast<std::size_t>(index)];
    note(runtime_name(rt.index) + " restarts");
    rt.connected = true;
    rt.down = false;
    claim(rt);
  });
}

/// A polling runtime's process dies (long-poll or SSE): what it held and
/// knew goes with it, and its session must give its leases back in time.
void world::lose_polling_process(sim_runtime& r) {
  r.down = true;
  ++r.process;
  r.held.clear();
  r.seen.clear();
  r.finished.clear();
  r.posting.clear();
  r.claiming = r.reporting = r.demanding = r.reopen_after_demand = false;
  r.outstanding = 0;
  r.last_event = 0;
  if (r.session != 0) checker_.consumer_died(core::consumer_id{r.session}, now(), dead_poller_bound());
  r.session = 0;
}

/// How soon a dead polling runtime's session gives its leases back: a
/// request sent before the death may still arrive late (and a claim wait
/// its wait_ms); then the idle timeout, the sweep's period and the release.
core::duration world::dead_poller_bound() const {
  return std::chrono::milliseconds(faults_.max_delay_ms) + 1ms + claim_wait_max + poll_idle + poll_expiry_period +
         lease_release_bound;
}

// --- the node's side (the gateway's poll_sessions) -----------------------------

void world::node_claim(int runtime, std::uint64_t session, std::uint64_t max, core::duration wait,
                       std::function<void(http_answer)> answer) {
  node_session* s = nullptr;
  if (session != 0) {
    auto it = sessions_.find(session);
    if (it == sessions_.end() || !it->second.alive) return answer(http_answer{404});
    s = &it->second;
  } else {
    s = &new_session(runtimes_[static_cast<std::size_t>(runtime)], true);
    note(runtime_name(runtime) + " opens long-poll session " + std::to_string(s->id.value));
  }
  s->last_seen = now();
  if (const auto n = s->poll.claim(max)) {
    checker_.demand_sent(s->id, n);
    caf::anon_send(s->consumer, actors::remote_demand_msg{n});
  }
  if (s->waiting) answer_claim(*s);  // an older claim of the session gives way
  s->waiting = node_session::waiting_claim{max, std::move(answer)};
  if (s->poll.ready() > 0 || wait.count() == 0) return answer_claim(*s);
  // Wait without spinning: answered by the next delivery or at wait_ms.
  at(now() + wait, [this, id = s->id.value, generation = ++s->claim_generation] {
    auto& parked = sessions_[id];
    if (parked.alive && parked.waiting && parked.claim_generation == generation) answer_claim(parked);
  });
}

std::vector<std::uint64_t> world::take_cancels(node_session& s) {
  std::vector<std::uint64_t> leases;
  for (const auto& c : s.poll.take_cancels()) {
    leases.push_back(c.lease.value);
    seen("poll_cancels");
  }
  return leases;
}

void world::answer_claim(node_session& s) {
  auto w = std::move(*s.waiting);
  s.waiting.reset();
  ++s.claim_generation;
  s.last_seen = now();
  w.answer(http_answer{200, s.id.value, s.poll.take(w.max), take_cancels(s)});
}

void world::node_results(std::uint64_t session, std::vector<actors::remote_report> reports,
                         std::function<void(http_answer)> answer) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.alive) return answer(http_answer{404});
  auto& s = it->second;
  s.last_seen = now();
  for (const auto& r : reports) s.poll.reported(r.lease);
  caf::anon_send(s.consumer, actors::remote_reports_msg{std::move(reports)});
  // A stream carries its own cancels; a long-poll runtime hears of them here too.
  answer(http_answer{202, s.id.value, {}, s.poll.stream() ? std::vector<std::uint64_t>{} : take_cancels(s)});
}

/// The gateway's periodic sweep: a session with no claim waiting that was
/// not heard from for the idle timeout ends, and the broker takes its leases
/// back.
void world::expire_poll_sessions() {
  const bool broken = options_.inject == "keep_idle_poll_sessions";  // test-only: a gateway that never sweeps
  for (auto& [id, s] : sessions_)
    if (!broken)
      if (s.polling && s.alive && !s.waiting && !s.streaming && now() - s.last_seen >= poll_idle) end_session(s, "idle");
  if (!workload_done()) at(now() + poll_expiry_period, [this] { expire_poll_sessions(); });
}

}  // namespace drover::sim::detail
