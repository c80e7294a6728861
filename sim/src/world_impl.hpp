#pragma once
// The simulated world of one seed (see world.hpp): the node's real actors,
// the simulated runtimes, links, submitters and faults. Private to sim/src;
// split over world.cpp (the loop, links, WebSocket runtimes, pool,
// workload, faults) and poll_runtime.cpp (long-poll runtimes).

#include <functional>
#include <set>
#include <memory>
#include <optional>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/error.hpp>
#include <asio/awaitable.hpp>
#include <asio/execution_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "drover/actors/broker_actor.hpp"
#include "drover/actors/client_channel.hpp"
#include "drover/actors/pool_actor.hpp"
#include "drover/actors/remote_consumer_actor.hpp"
#include "drover/actors/poll_session_book.hpp"
#include "drover/actors/runtime_session_book.hpp"
#include "drover/core/rng.hpp"
#include "drover/sim/trace.hpp"
#include "drover/sim/world.hpp"

namespace drover::sim::detail {

using namespace std::chrono_literals;
using core::time_point;

constexpr core::duration heartbeat = 1s;             // a partition longer than 2 heartbeats drops the connection
constexpr core::duration lease_release_bound = 2s;   // an ended session's leases are back within this
constexpr core::duration lease_ttl = 3s;             // a resumable runtime's dropped connection keeps its session this long
constexpr core::duration drain_limit = 5min;         // with faults stopped, everything ends within this
constexpr std::size_t queue_capacity = 300;          // live tasks: bursts hit queue_full
constexpr core::duration poll_idle = 2s;             // a long-poll session without a claim this long ends
constexpr core::duration poll_expiry_period = 500ms; // how often the node looks for idle long-poll sessions
constexpr core::duration claim_wait_max = 1s;        // the longest wait_ms a simulated claim asks for

inline caf::actor_system_config& testing_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.policy", caf::atom("testing"));
  cfg.set("logger.verbosity", caf::atom("quiet"));
  return cfg;
}

/// How the trace names a runtime: r0, r1, ...
inline std::string runtime_name(int index) { return "r" + std::to_string(index); }

inline std::string us(time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

/// A long-poll request's answer as the runtime sees it: status 0 when the
/// request or its answer was lost (the runtime sees a connection error).
struct http_answer {
  unsigned status = 0;
  std::uint64_t session = 0;
  std::vector<actors::remote_task> tasks;
  std::vector<std::uint64_t> cancels;  // leases a long-poll runtime is to stop working on
};

/// A remote runtime process and its connection (a WebSocket), or its
/// requests (long-poll).
struct sim_runtime {
  enum class transport { websocket, long_poll, sse };
  transport via = transport::websocket;
  int index = 0;
  std::uint32_t capacity = 1;
  std::vector<std::string> queues;
  bool resumable = false;         // asks the node to keep its session across a dropped connection
  std::uint64_t process = 0;      // bumped by a crash: its handlers die with it
  std::uint64_t incarnation = 0;  // the connection; bumped when it ends: its late messages are ignored
  bool connected = false;
  bool joined = false;            // welcomed on this connection
  std::uint64_t session = 0;      // the session it was welcomed into (forgotten in a crash)
  std::uint64_t attached_to = 0;  // node side: the session this connection carries
  std::uint32_t outstanding = 0;  // demand asked for, not yet filled
  std::map<std::uint64_t, std::uint64_t> held;  // lease -> task, ordered for a deterministic trace
  std::set<std::uint64_t> seen;                 // leases this connection received: a re-delivery is ignored
  struct unsent_report {
    std::uint64_t task = 0, lease = 0;
    std::function<void(sim_runtime&)> send;
  };
  std::vector<unsent_report> unsent;  // finished while disconnected: listed as held on resume, sent after the welcome
  time_point partitioned_until{};
  // One connection keeps each direction in order, as TCP does: a delayed
  // message holds back those behind it (reordering happens only between
  // directions and across connections).
  time_point last_to_node{}, last_to_runtime{};
  // Long-poll: one claim and one results request in flight at a time.
  bool claiming = false, reporting = false;
  std::vector<actors::remote_report> finished;  // to post with the next results request
  std::vector<actors::remote_report> posting;   // in the results request in flight
  bool polls() const { return via == transport::long_poll; }
  bool streams() const { return via == transport::sse; }
  // SSE: the last event id seen (Last-Event-ID on a resume), a demand
  // request in flight, a stream to reopen once it is answered.
  std::uint64_t last_event = 0;
  bool demanding = false, reopen_after_demand = false;
  bool down = false;  // the process is dead until it restarts (long-poll and SSE)
};

/// The node's side of one runtime session (the gateway's session_state):
/// its consumer actor and its books, alive while attached or parked.
struct node_session {
  int runtime = 0;
  core::consumer_id id;
  caf::actor consumer;
  actors::runtime_session_book book;
  bool joined = false, attached = true, alive = true;
  // A long-poll session (the gateway's poll_session): its books, when the
  // runtime was last heard from, and the claim waiting for tasks.
  bool polling = false;
  actors::poll_session_book poll;
  time_point last_seen{};
  struct waiting_claim {
    std::uint64_t max = 0;
    std::function<void(http_answer)> answer;
  };
  std::optional<waiting_claim> waiting;
  std::uint64_t claim_generation = 0;
  // SSE: a stream is attached, over the runtime's connection `stream_incarnation`.
  bool streaming = false;
  std::uint64_t stream_incarnation = 0;
};

/// A channel of a simulated client connection (`/v1/client`): the gateway's
/// own books (window, ordered delivery); what it delivers is the submission's
/// sequence number, for the checker.
struct sim_channel {
  std::uint64_t id = 0;
  actors::client_channel<std::uint64_t> book;
  bool ordered = false;       // what the client asked for (the checker's expectation)
  std::uint64_t submitted = 0;
};

class world;

/// The node side of a runtime's connection: what its consumer actor calls.
class sim_sink final : public actors::remote_sink {
 public:
  sim_sink(world& w, std::uint64_t session) : w_(w), session_(session) {}
  void joined(core::consumer_id id) override;
  void deliver(std::vector<actors::remote_task> tasks) override;
  void revoke(std::vector<core::cancel_notice> notices) override;
  void refused(core::task_id task, core::lease_id lease, core::error why) override;
  void failed(core::error why) override;

 private:
  world& w_;
  std::uint64_t session_;
};

/// Someone following a task by id (node::watch, as the gateway's /events
/// streams do): it must hear the task's state, then the same outcome as the
/// submitter, or be refused only once the task ended.
class sim_watcher final : public core::task_observer {
 public:
  sim_watcher(world& w, core::task_id task) : w_(w), task_(task) {}
  void on_accepted(core::task_id, bool, core::observer_tag) override;
  void on_state(core::task_state, std::uint16_t, core::observer_tag) override { taken_ = true; }
  void on_outcome(const core::task_outcome& outcome, core::observer_tag) override;
  void on_rejected(const core::error& why, core::observer_tag) override;
  core::task_id task() const { return task_; }
  bool taken() const { return taken_; }
  bool told() const { return told_; }

 private:
  world& w_;
  core::task_id task_;
  bool taken_ = false, told_ = false;
};

/// A submitter's view of one submit.
class sim_observer final : public core::task_observer {
 public:
  /// `ended` (optional) hears the submit's end: an outcome or a rejection.
  sim_observer(world& w, time_point earliest_start, std::function<void()> ended = {})
      : w_(w), earliest_start_(earliest_start), ended_(std::move(ended)) {}
  void on_accepted(core::task_id id, bool duplicate, core::observer_tag) override;
  void on_state(core::task_state, std::uint16_t, core::observer_tag) override {}
  void on_outcome(const core::task_outcome& outcome, core::observer_tag) override;
  void on_rejected(const core::error& why, core::observer_tag) override;

 private:
  world& w_;
  time_point earliest_start_;
  std::function<void()> ended_;
  bool duplicate_ = false;
};

class world {
 public:
  explicit world(const sim_options& o)
      : options_(o), faults_(o.faults), random_(o.seed), scenario_(o.seed ^ 0x5eed'c0de'f00d'ba11ULL),
        trace_(o.keep_trace) {}

  sim_result run();

  // Called by the sink and observers (on the one simulation thread).
  void on_joined(std::uint64_t session);
  void on_deliver(std::uint64_t session, std::vector<actors::remote_task> tasks);
  void on_revoke(std::uint64_t session, std::vector<core::cancel_notice> notices);
  void note(std::string line) { trace_.add(us(now()) + " " + line); }
  void on_accepted(core::task_id id, bool duplicate, time_point earliest_start);
  void on_outcome(const core::task_outcome& o, bool duplicate);
  void on_watch_outcome(const core::task_outcome& o);
  void on_watch_refused(core::task_id task);
  void on_rejected(const core::error& why) {
    ++rejected_;
    note("rejected " + std::string(core::to_string(why.code)));
  }
  void fired(const char* fault) { ++faults_fired_[fault]; }
  /// Coverage of the workload's kinds (long-poll runtimes, child tasks, ...).
  void seen(const char* what, std::uint64_t n = 1) { workload_[what] += n; }

 private:
  using event = std::function<void()>;

  time_point now() const {
    return time_point{std::chrono::duration_cast<core::duration>(sched_.clock().now().time_since_epoch())};
  }
  void at(time_point t, event e) { events_.emplace(std::make_pair(t, ++event_seq_), std::move(e)); }
  core::duration draw_ms(std::uint64_t lo, std::uint64_t hi) {
    return std::chrono::milliseconds(lo + random_.below(hi - lo + 1));
  }
  bool chance(double p) { return p > 0 && random_.chance(p); }
  const core::broker_core& broker_core() const {
    auto* a = caf::actor_cast<caf::abstract_actor*>(broker_);
    return *dynamic_cast<caf::stateful_actor<actors::broker_state>&>(*a).state.core;
  }

  // The loop.
  bool step();
  void advance_to(time_point t);
  void start_drain();

  // Links: latency, delay (which reorders), duplication, loss, partitions.
  time_point delivery_time(const sim_runtime& r, time_point& after);
  void to_node(sim_runtime& r, std::string what, std::function<void(sim_runtime&)> send, bool may_duplicate);
  void to_runtime(int runtime, std::uint64_t incarnation, std::string what, std::function<void(sim_runtime&)> receive,
                  bool may_duplicate);

  // Runtimes.
  void connect(sim_runtime& r);
  void drop(sim_runtime& r, const std::string& why, core::duration down, bool crash);
  void end_session(node_session& s, const std::string& why);
  void welcomed(sim_runtime& r, std::uint64_t session, bool resumed, std::uint64_t granted);
  void receive_cancels(sim_runtime& r, const std::vector<std::uint64_t>& leases);
  void top_up(sim_runtime& r);
  void start_attempt(sim_runtime& r, const actors::remote_task& t);
  void run_remote_handler(time_point deadline, const std::function<event(bool ok)>& finish);
  void finish_attempt(sim_runtime& r, std::uint64_t process, std::uint64_t task, std::uint64_t lease, std::uint32_t slot,
                      bool ok);
  // Long-poll runtimes (poll_runtime.cpp): claims and results as HTTP
  // requests, each of which can be lost on the way or on the way back.
  void http(sim_runtime& r, std::string what, std::function<void(std::function<void(http_answer)>)> at_node,
            std::function<void(sim_runtime&, http_answer)> answered);
  void claim(sim_runtime& r);
  void claimed(sim_runtime& r, http_answer a);
  void post_results(sim_runtime& r);
  void results_answered(sim_runtime& r, http_answer a);
  void start_poll_attempt(sim_runtime& r, const actors::remote_task& t);
  void crash_poller(sim_runtime& r, core::duration down);
  void lose_polling_process(sim_runtime& r);
  void node_claim(int runtime, std::uint64_t session, std::uint64_t max, core::duration wait,
                  std::function<void(http_answer)> answer);
  void answer_claim(node_session& s);
  /// The leases of the session's revoked tasks its runtime is to be told of (the book forgets them).
  std::vector<std::uint64_t> take_cancels(node_session& s);
  void node_results(std::uint64_t session, std::vector<actors::remote_report> reports,
                    std::function<void(http_answer)> answer);
  void expire_poll_sessions();
  core::duration dead_poller_bound() const;

  // SSE runtimes (sse_runtime.cpp): tasks pushed as events over a stream,
  // demand and results as HTTP requests.
  void open_stream(sim_runtime& r);
  void drop_stream(sim_runtime& r, const std::string& why, core::duration down, bool crash);
  void stream_welcomed(sim_runtime& r, std::uint64_t session, std::uint64_t requested);
  void stream_event(sim_runtime& r, std::uint64_t id, const actors::remote_task& t);
  void ask_more(sim_runtime& r);
  void demand_answered(sim_runtime& r, http_answer a);
  void node_open_stream(sim_runtime& r, std::uint64_t session, std::uint64_t last_event);
  void send_events(node_session& s, std::vector<actors::poll_session_book::event> events, std::string what,
                   std::optional<std::uint64_t> welcome_requested);
  void node_demand(std::uint64_t session, std::uint32_t n, std::function<void(http_answer)> answer);
  bool workload_done() const { return draining_ && checker_.ended_count() == checker_.accepted_count(); }

  /// A new session on the node for `r`: its remote-consumer actor joins the broker.
  node_session& new_session(const sim_runtime& r, bool polling = false);

  node_session* attached_session(const sim_runtime& r) {
    auto it = sessions_.find(r.attached_to);
    return it != sessions_.end() && it->second.alive && it->second.attached ? &it->second : nullptr;
  }

  // The in-process worker pool: the real pool actor, handlers on virtual time.
  void start_pool();
  asio::awaitable<actors::task_result> pool_attempt(actors::task_context& t);
  template <class Token>
  auto sleep_for(core::duration d, Token&& token);
  template <class Token>
  auto wait_until_called(std::function<void(std::function<void()>)> arm, Token&& token);
  template <class Token>
  auto await_children(std::uint64_t parent, Token&& token);
  const actors::pool_state& pool_state() const {
    auto* a = caf::actor_cast<caf::abstract_actor*>(pool_);
    return dynamic_cast<caf::stateful_actor<actors::pool_state>&>(*a).state;
  }

  // Workload and faults.
  void submit_tick();
  void submit_one();
  void open_channels();
  /// The channel a submit goes through (null: straight to the broker, as
  /// the embedded API does); a full window throttles the submit.
  sim_channel* pick_channel();
  void fault_tick();

  sim_options options_;
  fault_profile faults_;
  core::rng random_;
  // Scenario choices added after the first seeds were recorded (transports,
  // child tasks) draw from their own stream, so runs without them replay as
  // before.
  core::rng scenario_;
  trace trace_;
  invariant_checker checker_;

  // The pool's coroutines run on this context; it outlives the pending
  // virtual sleeps in events_, whose handlers resume (or destroy) them.
  asio::execution_context services_;
  std::shared_ptr<actors::pool_context> pool_context_ = std::make_shared<actors::pool_context>(services_);

  caf::actor_system_config cfg_;
  caf::actor_system sys_{testing_config(cfg_)};
  caf::scheduler::test_coordinator& sched_ = dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler());
  caf::actor broker_;
  caf::actor pool_;
  core::consumer_id pool_id_;
  std::uint32_t pool_running_ = 0;

  std::multimap<std::pair<time_point, std::uint64_t>, event> events_;
  std::uint64_t event_seq_ = 0;
  std::vector<sim_runtime> runtimes_;
  std::vector<sim_channel> channels_;
  std::map<std::uint64_t, node_session> sessions_;  // by session id (= consumer id)
  std::uint64_t next_task_ = 0, next_consumer_ = 0;
  std::vector<std::uint64_t> accepted_;
  std::size_t rejected_ = 0;
  std::uint64_t steps_ = 0;
  bool draining_ = false;
  time_point drain_deadline_ = time_point::max();
  bool forgot_outcome_ = false;
  std::uint64_t forgotten_task_ = 0;
  std::vector<std::shared_ptr<sim_watcher>> watchers_;
  std::map<std::string, std::uint64_t> faults_fired_;
  std::map<std::string, std::uint64_t> workload_;
};

}  // namespace drover::sim::detail
