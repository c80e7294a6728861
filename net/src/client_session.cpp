#include "client_session.hpp"

#include <array>
#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "drover/net/binary_frame.hpp"
#include "kept_outcomes.hpp"
#include "drover/actors/client_channel.hpp"
#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "io_poster.hpp"
#include "io_spin.hpp"
#include "end_of_turn.hpp"
#include "frame_outbox.hpp"
#include "frame_writer.hpp"
#include "peer_watch.hpp"
#include "read_buffer.hpp"
#include "json_fields.hpp"
#include "record_writer.hpp"
#include "pending_submits.hpp"
#include "submit_options.hpp"

namespace drover::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::uint64_t window_max = 1'000'000;
/// Follows one connection may have outstanding: unlike submits (bounded by
/// the node's task limit), a follow adds an observer to a task that exists
/// anyway, so it needs a bound of its own.
constexpr std::size_t follows_max = 10'000;
constexpr std::uint64_t default_window = 10'000;

/// What an outcome's head shares with the outcome before it, mostly: all but its ids.
struct outcome_head_key {
  std::uint64_t channel = 0;
  core::task_state state = core::task_state::succeeded;
  std::uint16_t attempts = 0;
  bool operator==(const outcome_head_key&) const = default;
};

out_frame text_frame(const json::object& o) { return out_frame{false, json::serialize(o), {}}; }

struct finished {
  std::uint64_t channel = 0, ref = 0, seq = 0;
  completion outcome;
};

/// Holds outcomes, not frames: an outcome's record is written when it is
/// sent, straight into the message that carries it (frame_outbox.hpp).
using channel = actors::client_channel<finished>;

/// A submit the broker accepted, for a client that asked to hear of it.
struct acceptance {
  core::observer_tag submit = 0;  // its entry in pending_submits
  std::uint64_t task = 0;
  bool duplicate = false;
};

/// A submit's (or follow's) outcome, on its way to the I/O thread.
struct ended {
  core::observer_tag submit = 0;
  completion outcome;
};

struct client_state;

/// Outcomes (and acceptances) arrive on broker threads; they are batched
/// here and handed to the I/O thread with one post per batch. One per
/// connection, with the way back to it.
struct completion_box {
  std::mutex mutex;
  std::vector<acceptance> accepted;
  std::vector<ended> items;
  /// Set while the box holds anything: read without the lock by an
  /// observer on the connection's own loop, which delivers straight away
  /// only while nothing waits here (what waits goes first).
  std::atomic<bool> holding{false};
  std::weak_ptr<client_state> state;  // set once, before the first submit
  std::shared_ptr<io_poster> poster;
  /// The session while it runs (I/O thread only: set at its start, cleared
  /// at its end, read only on its loop).
  client_state* running = nullptr;
  bool empty() const { return accepted.empty() && items.empty(); }
};

/// I/O thread only, except `box`.
struct client_state : std::enable_shared_from_this<client_state> {
  bool tell_accepted = false;  // `?accepted=true`
  kept_outcomes* kept = nullptr;  // with tell_accepted: outcomes also kept there, for a later follow
  std::shared_ptr<io_poster> gateway_open;  // `kept` is touched only under it
  /// Outstanding follows: the broker holds each observer until its task
  /// ends; those still held when the connection ends are taken back.
  std::vector<std::pair<core::task_id, std::weak_ptr<core::task_observer>>> follows;
  frame_outbox outbox;  // outcome records merged into messages with `?batch=true`
  repeated_fields<outcome_head_key> outcome_head_fields;  // send_outcome's
  writer_link writer;
  std::unordered_map<std::uint64_t, channel> channels;
  std::shared_ptr<completion_box> box = std::make_shared<completion_box>();
  pending_submits pending;  // the tags the observers' calls carry
  std::shared_ptr<core::task_observer> observer;  // of every submit on this connection

  void send(out_frame f) {
    outbox.push(std::move(f));
    request_write(*this, writer, false);
  }
  /// Channel `id`, or null. The last one found is kept: a connection's
  /// submits and outcomes nearly always use one channel, and hashing its id
  /// twice per task was 2 % of the gateway thread (channels are never
  /// closed, and a map entry stays where it is).
  channel* find_channel(std::uint64_t id) {
    if (last_channel_ && last_channel_id_ == id) return last_channel_;
    const auto it = channels.find(id);
    if (it == channels.end()) return nullptr;
    last_channel_id_ = id;
    return last_channel_ = &it->second;
  }
  void send_outcome(const finished& f);
  void send_outcome(std::uint64_t channel, std::uint64_t ref, const core::task_outcome& o);
  void refuse(std::uint64_t ch, std::uint64_t ref, std::string_view code, std::string_view message) {
    send(text_frame(json::object{{"type", "rejected"}, {"channel", ch}, {"ref", ref}, {"code", code}, {"message", message}}));
  }
  void error(std::string_view code, std::string_view message) {
    send(text_frame(json::object{{"type", "error"}, {"code", code}, {"message", message}}));
  }

 private:
  std::uint64_t last_channel_id_ = 0;
  channel* last_channel_ = nullptr;
};

std::string error_json(const core::error& e) {
  return json::serialize(json::object{{"code", core::to_string(e.code)}, {"message", e.message}});
}

/// A compact head of an outcome without an error copies its shared fields
/// from `shared` (encoded once while they repeat, not per outcome).
void write_outcome_head(record_writer& h, std::uint64_t channel, std::uint64_t ref, const core::task_outcome& o,
                        repeated_fields<outcome_head_key>& shared) {
  if (h.compact() && !o.err) {
    h.encoded(shared.get(outcome_head_key{channel, o.state, o.attempts}, [&](record_writer& w) {
      w.field("type", "outcome").field("channel", channel).field("state", core::to_string(o.state));
      w.field("attempts", o.attempts);
    }));
    h.field("ref", ref).field("task", o.id.value);
    return;
  }
  h.field("type", "outcome").field("channel", channel).field("ref", ref);
  h.field("task", o.id.value).field("state", core::to_string(o.state)).field("attempts", o.attempts);
  if (o.err) h.raw("error", error_json(o.err));
}

void write_rejected_head(record_writer& h, const finished& f) {
  h.field("type", "outcome").field("channel", f.channel).field("ref", f.ref);
  h.field("state", "rejected").raw("error", error_json(f.outcome.err()));
}

}  // namespace

void client_state::send_outcome(const finished& f) {
  if (f.outcome) return send_outcome(f.channel, f.ref, *f.outcome);
  static const core::bytes none;
  outbox.push_record([&](record_writer& h) { write_rejected_head(h, f); }, none);
  request_write(*this, writer, false, true);  // outcomes may gather while the loop is busy
}

void client_state::send_outcome(std::uint64_t channel, std::uint64_t ref, const core::task_outcome& o) {
  outbox.push_record([&](record_writer& h) { write_outcome_head(h, channel, ref, o, outcome_head_fields); }, o.value);
  request_write(*this, writer, false, true);
}

namespace {

void deliver(client_state& s, finished f) {
  channel* ch = s.find_channel(f.channel);
  if (!ch) return;
  const auto seq = f.seq;
  ch->finished(seq, std::move(f), [&](finished&& ready) { s.send_outcome(ready); });
}

void drain_box(const std::shared_ptr<client_state>& s);
void deliver_ended(client_state& s, ended e);
void deliver_outcome_here(client_state& s, core::observer_tag tag, const core::task_outcome& outcome);

/// The observer of a connection's submits (one for them all) or of one
/// follow: an outcome (or late rejection) joins the box of finished tasks
/// with its tag, and the first in a batch wakes the I/O thread, which finds
/// the submit by the tag. Runs on the broker's thread; no task handle (no
/// per-task lock or callback list).
class outcome_observer final : public core::task_observer {
 public:
  /// `kept`: with acknowledgements asked for, where the outcome is kept too
  /// (for a later follow); `kept` is the gateway's, touched only while the
  /// gateway runs (a task may end after its gateway is gone).
  outcome_observer(std::shared_ptr<completion_box> box, bool tell_accepted, kept_outcomes* kept,
                   std::shared_ptr<io_poster> gateway_open)
      : box_(std::move(box)), tell_accepted_(tell_accepted), kept_(kept), gateway_open_(std::move(gateway_open)) {}
  void on_accepted(core::task_id id, bool duplicate, core::observer_tag tag) override {
    if (tell_accepted_) put([&](completion_box& b) { b.accepted.push_back(acceptance{tag, id.value, duplicate}); });
  }
  void on_state(core::task_state, std::uint16_t, core::observer_tag) override {}
  bool follows_states() const override { return false; }
  void on_outcome(const core::task_outcome& outcome, core::observer_tag tag) override {
    if (kept_) gateway_open_->run_if_open([&] { kept_->add(outcome); });
    if (auto* s = here()) return deliver_outcome_here(*s, tag, outcome);
    finish(tag, completion(outcome));
  }
  void on_rejected(const core::error& why, core::observer_tag tag) override { finish(tag, completion(why)); }

 private:
  void finish(core::observer_tag tag, completion c) {
    // The broker's turn hosted by this connection's own loop (drover
    // serve): the outcome is written now, with no lock, box or post.
    if (auto* s = here()) return deliver_ended(*s, ended{tag, std::move(c)});
    put([&](completion_box& b) { b.items.push_back(ended{tag, std::move(c)}); });
  }
  client_state* here() const {
    if (!box_->poster->on_own_loop() || box_->holding.load(std::memory_order_acquire)) return nullptr;
    return box_->running;
  }
  template <class F>
  void put(F&& add) {
    bool first = false;
    {
      std::lock_guard lock(box_->mutex);
      first = box_->empty();
      add(*box_);
      box_->holding.store(true, std::memory_order_release);
    }
    if (first)
      box_->poster->post([state = box_->state] {
        if (auto s = state.lock()) drain_box(s);
      });
  }

  std::shared_ptr<completion_box> box_;
  bool tell_accepted_;
  kept_outcomes* kept_;  // null unless submits are acknowledged
  std::shared_ptr<io_poster> gateway_open_;
};

void drain_box(const std::shared_ptr<client_state>& s) {
  std::vector<acceptance> accepted;
  std::vector<ended> items;
  {
    std::lock_guard lock(s->box->mutex);
    accepted.swap(s->box->accepted);
    items.swap(s->box->items);
    s->box->holding.store(false, std::memory_order_release);
  }
  // Acceptances first: the broker accepts a task before it ends (and its
  // entry is still pending here).
  for (const auto& a : accepted) {
    const auto& p = s->pending[a.submit];
    s->send(text_frame(json::object{{"type", "accepted"}, {"channel", p.channel}, {"ref", p.ref}, {"task", a.task},
                                    {"duplicate", a.duplicate}}));
  }
  for (auto& e : items) deliver_ended(*s, std::move(e));
}

/// The outcome of submit `tag`, on the connection's own loop while nothing
/// waits in its box: on an unordered channel written straight from the
/// broker's outcome, with nothing built to carry it (a copy of the outcome
/// and three moves of it were a third of the outcome path).
void deliver_outcome_here(client_state& s, core::observer_tag tag, const core::task_outcome& outcome) {
  const auto& p = s.pending[tag];
  channel* ch = s.find_channel(p.channel);
  if (!ch || ch->ordered()) return deliver_ended(s, ended{tag, completion(outcome)});
  const auto ch_id = p.channel, ref = p.ref;
  s.pending.take(tag);
  ch->finished_at_once();
  s.send_outcome(ch_id, ref, outcome);
}

/// On the I/O thread: the submit (or follow) `e` is about is found by its tag.
void deliver_ended(client_state& s, ended e) {
  const auto p = s.pending.take(e.submit);
  // A followed task the broker no longer knows may have ended as the
  // follow arrived: its outcome may have been kept.
  if (p.follows && !e.outcome && s.kept)
    if (auto kept = s.kept->find(p.follows)) e.outcome = completion(*kept);
  deliver(s, finished{p.channel, p.ref, p.seq, std::move(e.outcome)});
}

std::optional<core::task_options> options_of(const record_header& h, std::string& bad) {
  // Most submits carry none: one test instead of six lookups.
  if (!h.may_contain_any(submit_option_codes)) return core::task_options{};
  auto o = read_submit_options([&](record_key key, std::uint64_t max, std::uint64_t& out) {
    if (!h.contains(key)) return true;
    auto v = h.uint(key);
    if (!v || *v > max) {
      bad = std::string(key.name()) + " must be a whole number from 0 to " + std::to_string(max);
      return false;
    }
    out = *v;
    return true;
  });
  if (!o) return std::nullopt;
  if (h.contains(submit_option::idempotency_key)) {
    auto key = h.string(submit_option::idempotency_key);
    if (!key) {
      bad = "idempotency_key must be a string";
      return std::nullopt;
    }
    o->idempotency_key = std::string(*key);
  }
  return o;
}

/// One submit record of a binary message.
void on_submit(const frame_record& r, const core::bytes& message, const std::shared_ptr<client_state>& s, node& n) {
  const auto& h = r.header;
  if (!is_literal(h.string("type"), "submit")) return s->error("unknown_type", "binary frames from a client are submits");
  const auto ch_id = h.uint("channel").value_or(0);
  auto ref = h.uint("ref");
  if (!ref) return s->error("invalid_argument", "a submit needs a numeric ref");
  auto queue = h.string("queue");
  if (!queue || queue->empty())
    return s->refuse(ch_id, *ref, "invalid_argument", "a submit needs a queue name");
  channel* found = s->find_channel(ch_id);
  if (!found) return s->refuse(ch_id, *ref, "unknown_channel", "open the channel first");
  channel& ch = *found;
  if (!ch.has_room())
    return s->refuse(ch_id, *ref, "window_full", "the channel's window is full: wait for outcomes");
  std::string bad;
  auto options = options_of(h, bad);
  if (!options) return s->refuse(ch_id, *ref, "invalid_argument", bad);
  // The payload stays in the message's buffer: no copy.
  auto payload = message.slice(r.body_offset, r.body_size);
  // The outcome may reach the observer (on the broker's thread) before the
  // submit returns here: its entry has its sequence number from the start.
  const auto tag = s->pending.add(pending_submit{ch_id, *ref, ch.next_seq(), 0});
  auto id = n.submit_observed(core::task_spec{std::string(*queue), std::move(payload), std::move(*options)},
                              when_full::fail, s->observer, tag);
  if (!id) {
    s->pending.take(tag);
    return s->refuse(ch_id, *ref, core::to_string(id.err().code), id.err().message);
  }
  expect_broker_reply();
  note_submits(1);
  ch.submitted();
}

/// A binary message: one or more submits.
void on_binary(std::string&& text, const std::shared_ptr<client_state>& s, node& n) {
  const auto message = core::bytes::adopt(std::move(text));
  const auto fault = for_each_record(message.view(), [&](const frame_record& r) { on_submit(r, message, s, n); });
  if (fault) s->error(fault.code, fault.message);
}

/// `follow`: the outcome of a task the client knows by id (one it submitted
/// before a reconnect, say) comes on a channel as if submitted there.
void on_follow(const json::object& o, const std::shared_ptr<client_state>& s, node& n) {
  const auto ch_id = uint_field(o, "channel").value_or(0);
  auto ref = uint_field(o, "ref");
  auto task = uint_field(o, "task");
  if (!ref || !task || *task == 0) return s->error("invalid_argument", "follow needs a numeric ref and task");
  channel* found = s->find_channel(ch_id);
  if (!found) return s->refuse(ch_id, *ref, "unknown_channel", "open the channel first");
  channel& ch = *found;
  if (!ch.has_room()) return s->refuse(ch_id, *ref, "window_full", "the channel's window is full: wait for outcomes");
  if (s->follows.size() >= follows_max)
    std::erase_if(s->follows, [](const auto& f) { return f.second.expired(); });  // those the broker let go of
  if (s->follows.size() >= follows_max)
    return s->refuse(ch_id, *ref, "too_many_follows", "at most 10000 follows outstanding per connection");
  const auto seq = ch.submitted();
  if (s->kept)
    if (auto o = s->kept->find(*task)) return deliver(*s, finished{ch_id, *ref, seq, completion(*o)});  // ended, kept
  // A task the broker no longer knows (and nobody kept) comes back as a
  // rejected outcome (unknown_task). An observer of its own, so that it can
  // be taken back when the connection ends.
  auto observer = std::make_shared<outcome_observer>(s->box, false, nullptr, nullptr);
  s->follows.emplace_back(core::task_id{*task}, observer);
  n.watch(core::task_id{*task}, std::move(observer), s->pending.add(pending_submit{ch_id, *ref, seq, *task}));
}

void on_text(std::string_view text, const std::shared_ptr<client_state>& state, node& n) {
  client_state& s = *state;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return s.error("bad_json", "messages must be JSON objects");
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string()) return s.error("bad_message", "every message needs a string 'type'");
  const std::string_view t = type->as_string();
  if (t == "open") {
    auto id = uint_field(o, "channel");
    if (!id) return s.error("invalid_argument", "open needs a numeric channel");
    auto window = o.contains("window") ? uint_field(o, "window") : std::optional<std::uint64_t>(default_window);
    if (!window || *window < 1 || *window > window_max)
      return s.error("invalid_argument", "window must be 1 to 1000000");
    auto ordered = o.if_contains("ordered");
    if (ordered && !ordered->is_bool()) return s.error("invalid_argument", "ordered must be a boolean");
    const channel opened(*window, ordered && ordered->as_bool());
    auto [it, added] = s.channels.try_emplace(*id, opened);
    if (!added && it->second.outstanding() > 0)
      return s.error("channel_busy", "a channel with tasks outstanding cannot be reopened");
    it->second = opened;
    return s.send(text_frame(json::object{{"type", "opened"}, {"channel", *id}, {"window", *window},
                                          {"ordered", it->second.ordered()}}));
  }
  if (t == "follow") return on_follow(o, state, n);
  if (t == "heartbeat") return s.send(text_frame(json::object{{"type", "heartbeat"}}));
  s.error("unknown_type", "unknown message type '" + std::string(t) + "'");
}

asio::awaitable<void> write_loop(ws_stream& ws, std::shared_ptr<client_state> s, asio::steady_timer& wake,
                                 std::shared_ptr<bool> done) {
  writer_end guard{std::move(done)};
  for (;;) {
    if (write_burst(ws, s->outbox, s->writer.wake, wake, false, writer_role::server)) co_return;
    if (s->writer.wake != &wake) co_return;
    co_await wait_for_frames(wake);
  }
}

}  // namespace

asio::awaitable<void> run_client_session(client_session_context ctx, beast::tcp_stream stream,
                                         beast::http::request<beast::http::string_body> upgrade) {
  stream.expires_never();
  beast::error_code nodelay_ec;
  stream.socket().set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
  ws_stream ws(stream.release_socket());
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(30);
  timeouts.idle_timeout = 2 * ctx.config.heartbeat_interval;  // until the accept: then the session's own watch
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.read_message_max(ctx.config.body_bytes_max + frame_header_bytes_max);
  ws.auto_fragment(false);  // a message is one frame: Beast's 4 KiB fragments cost a write and a header each
  auto [accept_ec] = co_await ws.async_accept(upgrade, tuple);
  if (accept_ec) co_return;

  const auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<client_state>();
  state->tell_accepted = ctx.accepted;
  state->kept = ctx.kept;
  state->gateway_open = ctx.gateway_open;
  state->channels.try_emplace(0, default_window, false);  // channel 0: open from the start, unordered
  asio::steady_timer wake(executor);
  state->writer.wake = &wake;
  state->outbox.merge_records(ctx.batch);
  state->outbox.write_headers(ctx.headers);
  auto poster = ctx.make_poster();
  state->box->state = state;
  state->box->poster = poster;
  state->box->running = state.get();
  // Only an acknowledged submit's outcome is kept (no lock taken for the others).
  state->observer = std::make_shared<outcome_observer>(state->box, ctx.accepted, ctx.accepted ? ctx.kept : nullptr,
                                                       ctx.accepted ? ctx.gateway_open : nullptr);
  struct end {
    std::shared_ptr<client_state>& s;
    std::shared_ptr<io_poster>& p;
    node& n;
    ~end() {
      s->box->running = nullptr;
      p->close();  // outcomes still to come are dropped; the tasks themselves go on
      s->writer = {};
      for (const auto& [task, follower] : s->follows)  // the broker need not keep them for nobody
        if (auto f = follower.lock()) n.unwatch(task, std::move(f));
    }
  } guard{state, poster, ctx.n};

  auto writer_done = std::make_shared<bool>(false);
  asio::co_spawn(executor, write_loop(ws, state, wake, writer_done), asio::detached);
  state->writer.write_now = write_now_for(ws, wake, *state);
  // A ping after a heartbeat of silence, dropped after two (peer_watch.hpp).
  peer_watcher<ws_stream> watch(ws, timeouts, 2 * ctx.config.heartbeat_interval);
  read_buffers buffers;
  for (;;) {
    std::string message = buffers.next();
    auto dyn = asio::dynamic_buffer(message);
    auto [ec, n] = co_await ws.async_read(dyn, tuple);
    buffers.fit(message);
    if (ec) break;
    watch.heard.note();
    if (ws.got_text()) {
      on_text(message, state, ctx.n);
    } else {
      on_binary(std::move(message), state, ctx.n);
    }
  }
  watch.stop();
  state->writer = {};
  wake.cancel();
  co_await wait_for_writer(writer_done);
  co_await watch.until_stopped();
}

}  // namespace drover::net
