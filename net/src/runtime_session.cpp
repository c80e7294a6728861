#include "runtime_session.hpp"

#include <array>
#include <deque>
#include <unordered_set>

#include <boost/asio/any_io_executor.hpp>
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
#include "drover/actors/runtime_session_book.hpp"
#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "io_poster.hpp"
#include "io_spin.hpp"
#include "runtime_name.hpp"
#include "end_of_turn.hpp"
#include "frame_outbox.hpp"
#include "frame_writer.hpp"
#include "peer_watch.hpp"
#include "read_buffer.hpp"
#include "json_fields.hpp"
#include "record_writer.hpp"
#include "runtime_note.hpp"
#include "task_notes.hpp"

namespace drover::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

namespace {

/// What a task's head shares with the task before it, mostly: all but its ids.
struct task_head_key {
  std::string queue;
  std::uint16_t attempt = 0;
  std::int64_t deadline_ms = 0;
  bool operator==(const task_head_key&) const = default;
};

}  // namespace

/// A runtime's session: outlives its connections when the runtime is
/// resumable. Shared between the connection's coroutines (I/O thread) and
/// the sink (CAF threads, through the poster). Holds no asio object: it may
/// outlive the I/O context inside a dropped callback.
struct session_state : std::enable_shared_from_this<session_state> {
  std::string name;  // from hello, for listings
  frame_outbox outbox;  // task records merged into messages when `batch`
  writer_link writer;  // the attached connection's writer
  bool attached = true;  // a connection is attached (false while parked)
  bool over = false;     // the consumer ended: nothing more is sent
  bool closing = false;  // the attached connection closes once its outbox is written
  bool failed = false;   // joining failed: the session cannot go on
  /// Demand not yet filled and the leases the runtime holds; what a resume tells it.
  actors::runtime_session_book book;
  core::consumer_id id;
  std::vector<std::string> queues;
  bool resumable = false;
  bool batch = false;  // the runtime reads several task records per message
  runtime_session_counts* counts = nullptr;  // the registry's, for refused reports
  header_format headers = header_format::json;  // how its task records' heads are written
  std::int64_t lease_ttl_ms = 0, heartbeat_ms = 0;
  /// The consumer's link while the session lives (attached or parked).
  actors::remote_link* link = nullptr;
  /// Results and failures read in this I/O turn: one report message to the
  /// broker per burst, not one per frame.
  std::vector<actors::remote_report> pending_reports;
  bool flush_posted = false;
  std::uint32_t reads_since_post = 0;
  asio::any_io_executor executor;  // the gateway's (an executor, not an I/O object)

  /// The reports gathered so far and `demand` more, in one message to the broker.
  void flush_reports(std::uint32_t demand = 0) {
    if (!link || (pending_reports.empty() && demand == 0)) return;
    const auto n = pending_reports.size();
    link->update(std::exchange(pending_reports, {}), demand);
    pending_reports.reserve(n);  // the next burst is likely as big: room at once, not in doublings
    expect_broker_reply();
  }
  /// A result or failure refused, with why (a lease the runtime does not
  /// hold: reported already, revoked, or never its own); the broker never
  /// hears of it.
  void refuse_report(core::task_id task, core::lease_id lease, const core::error& why);

  void send(out_frame f) {
    if (over || !attached) return;
    outbox.push(std::move(f));
    request_write(*this, writer, closing);
  }
  /// A task record, written straight into the message that carries it.
  void send_task(const actors::remote_task& t, std::chrono::steady_clock::duration now);
  repeated_fields<task_head_key> task_head_fields;  // send_task's

  /// The writer writes what is queued, then closes. From here on only the
  /// writer writes: a write already deferred to the end of the turn
  /// (end_of_turn.hpp) must not follow its close frame.
  void close_once_written() {
    closing = true;
    writer.write_now = nullptr;
    if (writer.wake) writer.wake->cancel();
  }
};

namespace {

constexpr std::uint32_t capacity_max = 65'535;
constexpr std::size_t report_batch_max = 256;

std::string text_of(const json::object& o) { return json::serialize(o); }

out_frame text_frame(const json::object& o) { return out_frame{false, text_of(o), {}}; }

out_frame error_frame(std::string_view code, std::string_view message) {
  return text_frame(json::object{{"type", "error"}, {"code", code}, {"message", message}});
}

}  // namespace

void session_state::refuse_report(core::task_id task, core::lease_id lease, const core::error& why) {
  if (counts) ++counts->refused_reports;
  send(text_frame(json::object{{"type", "error"},
                               {"code", core::to_string(why.code)},
                               {"message", why.message},
                               {"task", task.value},
                               {"lease", lease.value}}));
}

namespace {

/// `resent`: task frames that follow a resumed welcome. Each task frame
/// fills one unit of the demand a runtime counts as asked for, so those are
/// counted in `granted` (the node filled that demand while it was away).
out_frame welcome_frame(const session_state& s, bool resumed, std::uint64_t granted) {
  return text_frame(json::object{{"type", "welcome"},
                                 {"session", s.id.value},
                                 {"capacity", s.book.capacity()},
                                 {"resumed", resumed},
                                 {"granted", granted},
                                 {"lease_ttl_ms", s.resumable ? s.lease_ttl_ms : 0},
                                 {"heartbeat_ms", s.heartbeat_ms},
                                 {"batch", s.batch},
                                 {"headers", to_string(s.headers)}});
}

out_frame cancel_frame(std::uint64_t task, std::uint64_t lease) {
  return text_frame(json::object{{"type", "cancel"}, {"task", task}, {"lease", lease}});
}

/// `now`: steady_clock's, read once for a batch of frames. A compact head
/// with no meta copies its shared fields from `shared` (encoded once a
/// batch, not per task).
void write_task_head(record_writer& h, const actors::remote_task& t, std::chrono::steady_clock::duration now,
                     repeated_fields<task_head_key>& shared) {
  const auto& item = t.item;
  const auto deadline_ms = ms_left(item.deadline, now);
  const bool meta = item.meta && !item.meta->empty();
  if (h.compact() && !meta) {
    h.encoded(shared.get(task_head_key{t.queue, item.attempt, deadline_ms}, [&](record_writer& w) {
      w.field("type", "task").field("attempt", item.attempt).field("queue", t.queue).field("deadline_ms", deadline_ms);
      w.raw("meta", "{}");
    }));
    h.field("task", item.id.value).field("lease", item.lease.value).field("slot", item.slot);
    return;
  }
  h.field("type", "task").field("task", item.id.value).field("lease", item.lease.value).field("slot", item.slot);
  h.field("attempt", item.attempt).field("queue", t.queue).field("deadline_ms", deadline_ms);
  if (meta) {
    json::object m;
    for (const auto& [k, v] : *item.meta) m[k] = v;
    h.raw("meta", json::serialize(m));
  } else {
    h.raw("meta", "{}");
  }
}

}  // namespace

void session_state::send_task(const actors::remote_task& t, std::chrono::steady_clock::duration now) {
  if (over || !attached) return;
  outbox.push_record([&](record_writer& h) { write_task_head(h, t, now, task_head_fields); }, t.item.payload);
  request_write(*this, writer, closing);
}

namespace {

/// The sink the runtime's consumer actor calls on CAF threads.
class ws_sink final : public actors::remote_sink {
 public:
  ws_sink(std::shared_ptr<io_poster> p, std::shared_ptr<session_state> s) : poster_(std::move(p)), state_(std::move(s)) {}

  void joined(core::consumer_id id) override {
    poster_->post([s = state_, id] {
      s->id = id;
      s->send(welcome_frame(*s, false, 0));
    });
  }
  void deliver(std::vector<actors::remote_task> tasks) override {
    auto send = [s = state_, tasks = std::move(tasks)]() mutable {
      const auto now = std::chrono::steady_clock::now().time_since_epoch();
      for (auto& t : tasks) {
        s->send_task(t, now);
        s->book.delivered(std::move(t));
      }
    };
    pace(std::move(send));
  }
  void revoke(std::vector<core::cancel_notice> notices) override {
    auto send = [s = state_, notices = std::move(notices)] {
      // Every cancel comes here (the session keeps the leases): those for a
      // lease the runtime already reported on are dropped.
      for (const auto& n : notices)
        if (s->book.ended(n.lease.value)) s->send(cancel_frame(n.task.value, n.lease.value));
    };
    pace(std::move(send));  // behind the session's deliveries: a cancel never overtakes its task
  }
  /// Not called for this session: it keeps its leases and refuses stale
  /// reports itself (session_state::refuse_report).
  void refused(core::task_id task, core::lease_id lease, core::error why) override {
    poster_->post([s = state_, task, lease, why = std::move(why)] { s->refuse_report(task, lease, why); });
  }
  void failed(core::error why) override {
    poster_->post([s = state_, why = std::move(why)] {
      s->send(error_frame(core::to_string(why.code), why.message));
      s->failed = true;
      s->close_once_written();
    });
  }

 private:
  /// Runs `work` as the loop's paced work (end_of_turn::defer_paced), posted
  /// to the loop first when called from another thread (the broker on CAF's
  /// threads): a turn that feeds thousands of sessions does not write them
  /// all at once, and deliveries and cancels keep their order either way.
  template <class F>
  void pace(F&& work) {
    if (auto* turn = end_of_turn::current) return turn->defer_paced(std::forward<F>(work));
    poster_->post([work = std::forward<F>(work)]() mutable {
      if (auto* turn = end_of_turn::current) return turn->defer_paced(std::move(work));
      work();  // a loop without an end of turn (none in the gateway)
    });
  }

  std::shared_ptr<io_poster> poster_;
  std::shared_ptr<session_state> state_;
};


/// The single writer of one connection: one write at a time, frames in
/// order. A named coroutine with plain parameters, not a capturing lambda:
/// with a lambda, valgrind saw its captures released from freed memory when
/// the gateway shut down with the session open (docs/stack-notes.md).
asio::awaitable<void> write_loop(ws_stream& ws, std::shared_ptr<session_state> s, asio::steady_timer& wake,
                                 std::shared_ptr<bool> done) {
  writer_end guard{std::move(done)};
  for (;;) {
    if (write_burst(ws, s->outbox, s->writer.wake, wake, false, writer_role::server)) co_return;
    if (s->closing) {
      co_await ws.async_close(websocket::close_code::policy_error, tuple);
      co_return;
    }
    if (s->writer.wake != &wake) co_return;  // detached
    co_await wait_for_frames(wake);
  }
}

using actors::held_lease;

struct hello_result {
  std::string name;
  std::vector<std::string> queues;
  std::uint32_t capacity = 0;
  bool resumable = false;
  bool batch = false;
  header_format headers = header_format::json;
  std::optional<std::uint64_t> session;  // resume this one
  std::vector<held_lease> holding;       // leases the resuming runtime still works on
  websocket::close_code close = websocket::close_code::normal;  // != normal: refuse with this
  std::string code, message;
};

/// What the hello chose for the session, new or resumed: resumable, and
/// how its task records are written.
void take_hello_choices(session_state& s, const hello_result& h) {
  s.resumable = h.resumable;
  s.batch = h.batch;
  s.outbox.merge_records(h.batch);
  s.headers = h.headers;
  s.outbox.write_headers(h.headers);
}

hello_result parse_hello(std::string_view text, const gateway_config& config) {
  hello_result h;
  auto refuse = [&](websocket::close_code c, std::string code, std::string msg) {
    h.close = c, h.code = std::move(code), h.message = std::move(msg);
    return h;
  };
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return refuse(websocket::close_code::bad_payload, "bad_json", "hello must be a JSON object");
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string() || type->as_string() != "hello")
    return refuse(websocket::close_code::protocol_error, "expected_hello", "the first message must be a hello");
  if (!config.tokens.empty()) {
    auto token = o.if_contains("token");
    const bool ok = token && token->is_string() &&
                    std::find(config.tokens.begin(), config.tokens.end(), std::string(token->as_string())) != config.tokens.end();
    if (!ok) return refuse(websocket::close_code::policy_error, "unauthorized", "missing or unknown token");
  }
  if (auto name = o.if_contains("runtime"); name && name->is_string()) h.name = runtime_name(name->as_string());
  auto queues = o.if_contains("queues");
  if (!queues || !queues->is_array() || queues->as_array().empty())
    return refuse(websocket::close_code::bad_payload, "invalid_argument", "queues must be a non-empty array of names");
  for (const auto& q : queues->as_array()) {
    if (!q.is_string() || q.as_string().empty())
      return refuse(websocket::close_code::bad_payload, "invalid_argument", "queue names must be non-empty strings");
    h.queues.emplace_back(q.as_string());
  }
  auto capacity = o.if_contains("capacity");
  if (!capacity || !capacity->is_int64() || capacity->as_int64() < 1 || capacity->as_int64() > capacity_max)
    return refuse(websocket::close_code::bad_payload, "invalid_argument", "capacity must be an integer from 1 to 65535");
  h.capacity = static_cast<std::uint32_t>(capacity->as_int64());
  if (auto r = o.if_contains("resumable")) {
    if (!r->is_bool()) return refuse(websocket::close_code::bad_payload, "invalid_argument", "resumable must be a boolean");
    h.resumable = r->as_bool();
  }
  if (auto b = o.if_contains("batch")) {
    if (!b->is_bool()) return refuse(websocket::close_code::bad_payload, "invalid_argument", "batch must be a boolean");
    h.batch = b->as_bool();
  }
  if (auto f = o.if_contains("headers")) {
    const auto named = f->is_string() ? header_format_named(f->as_string()) : std::nullopt;
    if (!named) return refuse(websocket::close_code::bad_payload, "invalid_argument", "headers must be \"json\" or \"compact\"");
    h.headers = *named;
  }
  if (o.contains("session")) {
    h.session = uint_field(o, "session");
    if (!h.session) return refuse(websocket::close_code::bad_payload, "invalid_argument", "session must be a session id");
  }
  if (auto holding = o.if_contains("holding")) {
    const auto* list = holding->if_array();
    if (!list || list->size() > capacity_max)
      return refuse(websocket::close_code::bad_payload, "invalid_argument", "holding must be an array of {task, lease}");
    for (const auto& e : *list) {
      const auto* lease = e.if_object();
      auto task = lease ? uint_field(*lease, "task") : std::nullopt;
      auto id = lease ? uint_field(*lease, "lease") : std::nullopt;
      if (!task || !id)
        return refuse(websocket::close_code::bad_payload, "invalid_argument", "holding entries need task and lease");
      h.holding.push_back({*task, *id});
    }
  }
  return h;
}

/// A task and lease named by a message, if the runtime holds that lease;
/// otherwise the runtime is told (stale_lease) and null returned.
const actors::remote_task* held(const json::object& o, session_state& s, std::string_view what) {
  auto task = uint_field(o, "task"), lease = uint_field(o, "lease");
  if (!task || !lease) {
    s.send(error_frame("invalid_argument", std::string(what) + " needs task and lease"));
    return nullptr;
  }
  const auto* t = s.book.held(*task, *lease);
  if (!t) {
    s.send(text_frame(json::object{{"type", "error"}, {"code", "stale_lease"},
                                   {"message", "this runtime does not hold that lease"}, {"task", *task}, {"lease", *lease}}));
    return nullptr;
  }
  return t;
}

/// A result or failure for a lease the runtime does not hold.
void refuse_stale(session_state& s, std::uint64_t task, std::uint64_t lease) {
  s.refuse_report(core::task_id{task}, core::lease_id{lease}, actors::not_held(core::task_id{task}, core::lease_id{lease}));
}

/// More demand, from a text frame or a record of a binary message.
void on_demand(std::optional<std::uint64_t> n, session_state& s) {
  if (!n || *n == 0 || *n > capacity_max) return s.send(error_frame("invalid_argument", "demand n must be 1 to 65535"));
  if (!s.book.demand(static_cast<std::uint32_t>(*n)))
    return s.send(error_frame("over_capacity", "demand beyond the capacity declared in hello"));
  s.flush_reports(static_cast<std::uint32_t>(*n));  // finished work first, then the new demand
}

/// A text message after the hello.
void on_text(std::string_view text, session_state& s, task_notes& notes) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return s.send(error_frame("bad_json", "messages must be JSON objects"));
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string()) return s.send(error_frame("bad_message", "every message needs a string 'type'"));
  const std::string_view t = type->as_string();
  if (t == "demand") return on_demand(uint_field(o, "n"), s);
  if (t == "failure") {
    auto task = uint_field(o, "task"), lease = uint_field(o, "lease");
    if (!task || !lease) return s.send(error_frame("invalid_argument", "failure needs task and lease"));
    auto message = o.if_contains("message");
    auto retryable = o.if_contains("retryable");
    std::string why = message && message->is_string() ? std::string(message->as_string()) : "runtime reported failure";
    const bool retry = !(retryable && retryable->is_bool() && !retryable->as_bool());
    if (!s.book.reported(*task, *lease)) return refuse_stale(s, *task, *lease);
    const auto slot = uint_field(o, "slot").value_or(UINT32_MAX);
    s.pending_reports.push_back(actors::remote_report{core::task_id{*task}, core::lease_id{*lease},
                                                      core::attempt_result::failure(std::move(why), retry),
                                                      static_cast<std::uint32_t>(slot)});
    return;
  }
  if (t == "progress" || t == "log") {
    auto read = read_runtime_note(t, o);
    if (!read.note) return s.send(error_frame(read.code, read.message));
    if (const auto* task = held(o, s, t)) file_runtime_note(notes, task->item.id.value, std::move(*read.note));
    return;
  }
  if (t == "heartbeat") return s.send(text_frame(json::object{{"type", "heartbeat"}}));
  s.send(error_frame("unknown_type", "unknown message type '" + std::string(t) + "'"));
}

/// One record of a binary message: a result, or demand (which a runtime
/// sends in the message of the results that freed it: no text frame of its
/// own to read and parse as JSON per batch).
void on_record(const frame_record& r, const core::bytes& message, session_state& s, std::size_t body_bytes_max) {
  const auto& o = r.header;
  const auto type = o.string("type");
  if (!is_literal(type, "result")) {
    if (is_literal(type, "demand")) return on_demand(o.uint("n"), s);
    return s.send(error_frame("unknown_type", "binary frames from a runtime are results and demand"));
  }
  auto task = o.uint("task"), lease = o.uint("lease");
  if (!task || !lease) return s.send(error_frame("invalid_argument", "result needs task and lease"));
  if (r.body_size > body_bytes_max)
    return s.send(text_frame(json::object{{"type", "error"}, {"code", "too_large"}, {"message", "result bytes beyond the limit"},
                                          {"task", *task}, {"lease", *lease}}));
  const auto slot = static_cast<std::uint32_t>(o.uint("slot").value_or(UINT32_MAX));
  if (!s.book.reported(*task, *lease)) return refuse_stale(s, *task, *lease);
  // The result's bytes stay in the message's buffer: no copy.
  s.pending_reports.push_back(actors::remote_report{core::task_id{*task}, core::lease_id{*lease},
                                                    core::attempt_result::success(message.slice(r.body_offset, r.body_size)),
                                                    slot});
}

/// A binary message after the hello: one or more results and demand.
void on_binary(std::string&& text, session_state& s, std::size_t body_bytes_max) {
  const auto message = core::bytes::adopt(std::move(text));
  const auto fault = for_each_record(message.view(), [&](const frame_record& r) { on_record(r, message, s, body_bytes_max); });
  if (fault) s.send(error_frame(fault.code, fault.message));
}

/// Welcomes a resumed runtime and gives it what it lost with its
/// connection: cancels for the leases it works on but no longer holds, and
/// the tasks it holds leases for but does not know of.
void resume(session_state& s, const std::vector<held_lease>& holding, std::uint32_t capacity) {
  const auto r = s.book.resume(holding, capacity);
  s.send(welcome_frame(s, true, r.granted));
  for (const auto& c : r.cancel) s.send(cancel_frame(c.task, c.lease));
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  for (const auto* t : r.resend) s.send_task(*t, now);
}

/// Sends the reports gathered once a turn passes without another frame
/// read (frames Beast already buffered complete one per turn), so a burst
/// of results is one message to the broker.
void flush_when_reading_pauses(std::weak_ptr<session_state> w) {
  auto s = w.lock();
  if (!s) return;
  if (s->reads_since_post > 0 && !s->pending_reports.empty()) {
    s->reads_since_post = 0;
    auto ex = s->executor;
    asio::post(ex, [w = std::move(w)] { flush_when_reading_pauses(w); });
    return;
  }
  s->flush_posted = false;
  s->flush_reports();
}

}  // namespace

/// A session whose runtime's connection dropped, waiting for it to resume.
struct parked_session {
  std::shared_ptr<session_state> state;
  std::shared_ptr<io_poster> poster;
  std::unique_ptr<actors::remote_link> link;
  asio::steady_timer expiry;

  ~parked_session() {
    if (!link) return;  // taken back by the runtime
    state->flush_reports();
    state->link = nullptr;
    poster->close();
    state->over = true;
    link->close();  // the broker releases the runtime's leases
  }
};

runtime_registry::runtime_registry() = default;
runtime_registry::~runtime_registry() = default;

void runtime_registry::park(std::unique_ptr<parked_session> s) {
  const auto id = s->state->id.value;
  auto* raw = s.get();
  s->expiry.async_wait([this, id, raw](boost::system::error_code ec) {
    if (ec) return;  // taken back, or the gateway stopped
    auto it = parked_.find(id);
    if (it != parked_.end() && it->second.get() == raw) {
      ++counts_.expired;
      parked_.erase(it);
    }
  });
  parked_[id] = std::move(s);
  ++counts_.parked;
}

void runtime_registry::track(const std::shared_ptr<session_state>& s) {
  // Ended sessions are swept when the list has doubled since the last sweep:
  // amortised O(1) per connect, not a scan of every session each time.
  if (live_.size() >= sweep_at_) {
    std::erase_if(live_, [](const std::weak_ptr<session_state>& w) {
      auto p = w.lock();
      return !p || p->over;
    });
    sweep_at_ = std::max<std::size_t>(64, 2 * live_.size());
  }
  live_.push_back(s);
}

json::array runtime_registry::describe() {
  json::array out;
  for (const auto& w : live_) {
    auto s = w.lock();
    if (!s || s->over || s->id.value == 0) continue;
    json::array queues;
    for (const auto& q : s->queues) queues.emplace_back(q);
    out.push_back(json::object{{"session", s->id.value},      {"transport", "websocket"}, {"name", s->name},
                               {"queues", std::move(queues)}, {"capacity", s->book.capacity()},
                               {"demand", s->book.granted()},  {"in_flight", s->book.in_flight()},
                               {"connected", s->attached},    {"resumable", s->resumable}});
  }
  return out;
}

std::unique_ptr<parked_session> runtime_registry::take(std::uint64_t session) {
  auto it = parked_.find(session);
  if (it == parked_.end()) return nullptr;
  auto s = std::move(it->second);
  parked_.erase(it);
  s->expiry.cancel();
  ++counts_.resumed;
  return s;
}

asio::awaitable<void> run_runtime_session(runtime_session_context ctx, beast::tcp_stream stream,
                                          beast::http::request<beast::http::string_body> upgrade) {
  stream.expires_never();  // the HTTP read's timer goes: the WebSocket takes the socket and watches it itself
  beast::error_code nodelay_ec;
  stream.socket().set_option(asio::ip::tcp::no_delay(true), nodelay_ec);
  ws_stream ws(stream.release_socket());
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = std::chrono::seconds(30);
  timeouts.idle_timeout = 2 * ctx.config.heartbeat_interval;  // until the hello: then the session's own watch
  timeouts.keep_alive_pings = true;
  ws.set_option(timeouts);
  ws.read_message_max(ctx.config.body_bytes_max + frame_header_bytes_max);
  ws.auto_fragment(false);  // a message is one frame: Beast's 4 KiB fragments cost a write and a header each
  auto [accept_ec] = co_await ws.async_accept(upgrade, tuple);
  if (accept_ec) co_return;

  std::string first;
  auto buffer = asio::dynamic_buffer(first);
  auto [hello_ec, hello_n] = co_await ws.async_read(buffer, tuple);
  if (hello_ec) co_return;
  hello_result hello;
  if (ws.got_binary()) {
    hello.close = websocket::close_code::bad_payload;
    hello.code = "expected_hello", hello.message = "the first message must be a text hello";
  } else {
    hello = parse_hello(first, ctx.config);
  }
  if (hello.close != websocket::close_code::normal) {
    ws.text(true);
    const auto err = text_of(json::object{{"type", "error"}, {"code", hello.code}, {"message", hello.message}});
    co_await ws.async_write(asio::buffer(err), tuple);
    co_await ws.async_close(websocket::close_reason(hello.close, hello.message), tuple);
    co_return;
  }

  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer wake(executor);
  std::shared_ptr<session_state> state;
  std::shared_ptr<io_poster> poster;
  std::unique_ptr<actors::remote_link> link;
  std::unique_ptr<parked_session> resumed = hello.session ? ctx.registry.take(*hello.session) : nullptr;
  if (resumed && resumed->state->queues != hello.queues) resumed.reset();  // another runtime's: it ends
  if (resumed) {
    state = resumed->state, poster = resumed->poster, link = std::move(resumed->link);
    resumed.reset();
    state->attached = true, state->closing = false, state->writer.wake = &wake;
    take_hello_choices(*state, hello);
    resume(*state, hello.holding, hello.capacity);
  } else {
    state = std::make_shared<session_state>();
    state->name = hello.name;
    state->book = actors::runtime_session_book(hello.capacity);
    state->queues = hello.queues;
    take_hello_choices(*state, hello);
    state->lease_ttl_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.config.runtime_lease_ttl).count();
    state->heartbeat_ms = std::chrono::duration_cast<std::chrono::milliseconds>(ctx.config.heartbeat_interval).count();
    state->writer.wake = &wake;
    state->counts = &ctx.registry.counts();
    poster = ctx.make_poster();
    link = ctx.n.attach_remote(hello.queues, std::make_shared<ws_sink>(poster, state), true);
    ctx.registry.track(state);
  }
  // However the connection ends without being parked (close, error,
  // gateway stop): no more posts, the consumer ends and the broker releases
  // the runtime's leases.
  struct end_unless_parked {
    std::shared_ptr<session_state>& s;
    std::shared_ptr<io_poster>& p;
    std::unique_ptr<actors::remote_link>& l;
    ~end_unless_parked() {
      if (!l) return;  // parked: the registry owns it now
      s->flush_reports();
      s->link = nullptr;
      p->close();
      s->over = true;
      s->writer = {};
      l->close();
    }
  } guard{state, poster, link};

  state->link = link.get();
  state->executor = executor;
  auto writer_done = std::make_shared<bool>(false);
  asio::co_spawn(executor, write_loop(ws, state, wake, writer_done), asio::detached);
  state->writer.write_now = write_now_for(ws, wake, *state);
  // A ping after a heartbeat of silence, dropped after two (peer_watch.hpp).
  peer_watcher<ws_stream> watch(ws, timeouts, 2 * ctx.config.heartbeat_interval);
  beast::error_code read_ec;
  read_buffers buffers;
  for (;;) {
    std::string message = buffers.next();
    auto dyn = asio::dynamic_buffer(message);
    auto [ec, n] = co_await ws.async_read(dyn, tuple);
    buffers.fit(message);
    if (ec) {  // closed, silent past the watch (socket closed), or too big (Beast answers 1009)
      read_ec = ec;
      break;
    }
    watch.heard.note();
    if (ws.got_text()) {
      on_text(message, *state, ctx.notes);
    } else {
      on_binary(std::move(message), *state, ctx.config.body_bytes_max);
    }
    ++state->reads_since_post;
    if (state->pending_reports.size() >= report_batch_max) state->flush_reports();
    if (!state->pending_reports.empty() && !state->flush_posted) {
      state->flush_posted = true;
      asio::post(executor, [w = std::weak_ptr<session_state>(state)] { flush_when_reading_pauses(w); });
    }
    if (state->closing) break;
  }
  watch.stop();
  // Let the writer finish what is queued (a final error frame) before the frame goes.
  state->close_once_written();
  co_await wait_for_writer(writer_done);
  co_await watch.until_stopped();
  state->writer = {};
  state->attached = false;
  state->closing = false;
  state->outbox.clear();
  // A clean close (the runtime said goodbye) ends the session at once; a
  // dropped connection of a resumable runtime parks it for the lease TTL.
  const bool dropped = read_ec && read_ec != websocket::error::closed;
  if (dropped && state->resumable && !state->failed && state->id.value != 0 &&
      ctx.config.runtime_lease_ttl.count() > 0) {
    ctx.registry.park(std::unique_ptr<parked_session>(new parked_session{
        state, poster, std::move(link), asio::steady_timer(executor, ctx.config.runtime_lease_ttl)}));
  }
}

}  // namespace drover::net
