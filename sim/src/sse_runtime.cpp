// SSE runtimes in the simulation: `GET /v1/runtime/stream` pushes tasks as
// numbered events over one connection (in order; a loss drops it), while
// demand and results travel as HTTP requests that can be lost either way.
// A dropped stream resumes with its session and Last-Event-ID and gets the
// unanswered events after it again; the welcome's `requested` tells the
// runtime the demand the node counts. The node's side is the gateway's poll
// session with the same books (actors::poll_session_book).
#include "world_impl.hpp"

namespace drover::sim::detail {

// --- the runtime's side ----------------------------------------------------------

/// Opens the stream, or resumes the session it has. A demand request still
/// in flight is answered first: the welcome's count must include it or not,
/// for sure.
void world::open_stream(sim_runtime& r) {
  if (r.down || r.connected) return;
  if (r.demanding) {
    r.reopen_after_demand = true;
    return;
  }
  r.connected = true;
  r.joined = false;
  r.last_to_node = r.last_to_runtime = now();
  const auto session = r.session, last = r.last_event;
  to_node(r, "stream session " + std::to_string(session) + " last event " + std::to_string(last),
          [this, session, last](sim_runtime& rt) { node_open_stream(rt, session, last); }, false);
}

/// The stream ends (a lost event, a partition outlasting the keepalives, a
/// crash). The node keeps the session until it idles out; the runtime
/// resumes it after `down`, unless it crashed and forgot it.
void world::drop_stream(sim_runtime& r, const std::string& why, core::duration down, bool crash) {
  if (!r.connected && !crash) return;
  note(runtime_name(r.index) + " stream drops: " + why);
  r.connected = false;
  r.joined = false;
  ++r.incarnation;
  if (auto it = sessions_.find(r.attached_to); it != sessions_.end() && it->second.streaming) {
    it->second.streaming = false;  // resumable until idle
    it->second.last_seen = now();
  }
  if (crash) lose_polling_process(r);
  at(now() + down, [this, index = r.index] {
    auto& rt = runtimes_[static_cast<std::size_t>(index)];
    rt.down = false;
    open_stream(rt);
  });
}

void world::stream_welcomed(sim_runtime& r, std::uint64_t session, std::uint64_t requested) {
  if (session != r.session) {  // a new session: what it ran for an older one is no longer its own
    r.held.clear();
    r.seen.clear();
    r.finished.clear();
    r.last_event = 0;
  }
  r.session = session;
  r.joined = true;
  r.outstanding = static_cast<std::uint32_t>(requested);
}

void world::stream_event(sim_runtime& r, std::uint64_t id, const actors::remote_task& t) {
  r.last_event = std::max(r.last_event, id);
  if (r.outstanding > 0) --r.outstanding;
  if (!r.seen.insert(t.item.lease.value).second) return;  // already running or answered
  start_poll_attempt(r, t);
}

/// Asks for what its capacity leaves free, once what it answered is known
/// to the node (so both sides count the same).
void world::ask_more(sim_runtime& r) {
  if (r.down || !r.connected || !r.joined || r.demanding) return;
  const auto busy = r.held.size() + r.finished.size() + r.posting.size() + r.outstanding;
  if (busy >= r.capacity) return;
  const auto n = static_cast<std::uint32_t>(r.capacity - busy);
  r.demanding = true;
  r.outstanding += n;
  http(r, "demand " + std::to_string(n),
       [this, session = r.session, n](std::function<void(http_answer)> answer) { node_demand(session, n, std::move(answer)); },
       [this](sim_runtime& rt, http_answer a) { demand_answered(rt, std::move(a)); });
}

void world::demand_answered(sim_runtime& r, http_answer a) {
  r.demanding = false;
  if (a.status == 202) {
    if (std::exchange(r.reopen_after_demand, false)) open_stream(r);
    return ask_more(r);
  }
  // Unknown whether it counted (lost), or the session is gone (404):
  // resume the stream to learn the node's count, or open a new session.
  if (a.status == 404) r.session = 0;
  r.reopen_after_demand = false;
  if (r.connected) drop_stream(r, a.status == 404 ? "session gone" : "demand answer lost", draw_ms(1, 50), false);
  else open_stream(r);
}

// --- the node's side (the gateway's run_sse and poll_sessions) -------------------

void world::node_open_stream(sim_runtime& r, std::uint64_t session, std::uint64_t last_event) {
  node_session* s = nullptr;
  if (session != 0) {
    auto it = sessions_.find(session);
    if (it == sessions_.end() || !it->second.alive) {
      return to_runtime(r.index, r.incarnation, "404 unknown_session", [this](sim_runtime& rt) {
        rt.session = 0;
        drop_stream(rt, "session gone", draw_ms(1, 50), false);
      }, false);
    }
    s = &it->second;
    note(runtime_name(r.index) + " resumes stream session " + std::to_string(session) + " after event " + std::to_string(last_event));
    fired("resume");
  } else {
    s = &new_session(r, true);
    s->poll = actors::poll_session_book(r.capacity);
    const auto n = s->poll.open();
    checker_.demand_sent(s->id, n);
    caf::anon_send(s->consumer, actors::remote_demand_msg{n});
    note(runtime_name(r.index) + " opens stream session " + std::to_string(s->id.value));
  }
  r.attached_to = s->id.value;
  s->streaming = true;  // a resumed stream takes over from an older connection
  s->stream_incarnation = r.incarnation;
  s->last_seen = now();
  auto events = s->poll.unanswered_after(last_event);
  auto requested = s->poll.requested_after(last_event);
  if (options_.inject == "sse_welcome_forgets_demand") requested = 0;  // test-only: a welcome that miscounts
  const auto resent = events.size();
  for (const auto& e : s->poll.stream_ready()) events.push_back(e);
  send_events(*s, std::move(events), "welcome requested " + std::to_string(requested) + ", " + std::to_string(resent) + " sent again,",
              requested);
}

/// Events go out over the session's stream in order; the welcome first when
/// the stream is new.
void world::send_events(node_session& s, std::vector<actors::poll_session_book::event> events, std::string what,
                        std::optional<std::uint64_t> welcome_requested) {
  std::vector<std::pair<std::uint64_t, actors::remote_task>> copies;  // the book's entries may go before delivery
  for (const auto& e : events) copies.emplace_back(e.id, *e.task);
  // Cancels of leases the runtime holds follow the task events (unnumbered).
  auto cancels = take_cancels(s);
  what += " " + std::to_string(copies.size()) + " events";
  if (!cancels.empty()) what += ", cancels of " + std::to_string(cancels.size());
  to_runtime(s.runtime, s.stream_incarnation, what,
             [this, session = s.id.value, welcome_requested, copies = std::move(copies), cancels](sim_runtime& rt) {
               if (welcome_requested) stream_welcomed(rt, session, *welcome_requested);
               for (const auto& [id, task] : copies) stream_event(rt, id, task);
               receive_cancels(rt, cancels);
               ask_more(rt);
             },
             false);
}

void world::node_demand(std::uint64_t session, std::uint32_t n, std::function<void(http_answer)> answer) {
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.alive) return answer(http_answer{404});
  auto& s = it->second;
  s.last_seen = now();
  if (!s.poll.demand(n)) {  // 400 over_capacity: a runtime keeping the protocol never sees it
    checker_.demand_refused(s.id, n, s.poll.outstanding(), s.poll.unanswered() + s.poll.ready(),
                            runtimes_[static_cast<std::size_t>(s.runtime)].held.size());
    return answer(http_answer{400, session, {}});
  }
  checker_.demand_sent(s.id, n);
  caf::anon_send(s.consumer, actors::remote_demand_msg{n});
  answer(http_answer{202, session, {}});
}

}  // namespace drover::sim::detail
