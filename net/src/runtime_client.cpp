#include "drover/net/runtime_client.hpp"

#include <array>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json.hpp>

#include "drover/actors/held_lease.hpp"
#include "drover/net/binary_frame.hpp"
#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "json_fields.hpp"
#include "record_writer.hpp"
#include "frame_writer.hpp"
#include "peer_watch.hpp"
#include "read_buffer.hpp"

namespace drover::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = asio::ip::tcp;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

namespace {

enum class frame_kind : std::uint8_t { demand, report, other };

using actors::held_lease;

struct queued_frame : out_frame {
  frame_kind kind = frame_kind::other;
  // A report frame's leases (a message of results has several): listed as
  // held on resume until the frame is sent.
  boost::container::small_vector<held_lease, 1> reports;
  bool open = false;  // a message of results that takes more while it is the outbox's last
  std::size_t used = 0;  // while open: its records end here, and room follows
  // Where a demand record closing this message of results starts (none:
  // npos); a resumed session drops it, as it drops demand frames.
  std::size_t demand_at = std::string::npos;
};

/// A task in the hands of a handler; its coroutine's completion handler
/// keeps it (and so its cancellation signal) alive to the coroutine's end.
struct running_task {
  runtime_task task;
  std::uint64_t session = 0;  // whose lease it is
  asio::cancellation_signal cancel;
  bool abandoned = false;  // its lease is gone: its outcome is not reported
};

}  // namespace

struct runtime_task::access {
  static void fill(runtime_task& t, detail::runtime_connection* owner, const record_header& h, core::bytes payload,
                   std::chrono::steady_clock::time_point now) {
    t.owner_ = owner;
    t.id_ = core::task_id{h.uint("task").value_or(0)};
    t.lease_ = h.uint("lease").value_or(0);
    t.slot_ = static_cast<std::uint32_t>(h.uint("slot").value_or(UINT32_MAX));
    t.attempt_ = static_cast<std::uint16_t>(h.uint("attempt").value_or(1));
    if (auto q = h.string("queue")) t.queue_ = std::string(*q);
    if (auto m = h.nested("meta"); m && m->is_object())
      for (const auto& [k, v] : m->as_object())
        if (v.is_string()) t.meta_.emplace_back(std::string(k), std::string(v.as_string()));
    t.deadline_ = now + std::chrono::milliseconds(h.uint("deadline_ms").value_or(0));
    t.payload_ = std::move(payload);
  }
  static std::uint32_t slot(const runtime_task& t) { return t.slot_; }
  static void mark_cancelled(runtime_task& t) { t.cancelled_ = true; }
};

namespace detail {

/// One connection's state, shared by the coroutines serving it on the I/O
/// thread: each of them holds it (`keep`), so a client that stops while a
/// handler ignores its cancellation leaves nothing dangling.
struct runtime_connection : std::enable_shared_from_this<runtime_connection> {
  using keep_alive = std::shared_ptr<runtime_connection>;
  runtime_client_config config;
  runtime_handler handler;              // one of these two
  runtime_immediate_handler immediate;  // is set
  asio::io_context& io;
  std::mt19937_64 rng;

  // I/O thread only.
  std::deque<queued_frame> outbox;
  asio::steady_timer* wake = nullptr;  // the current connection's writer
  bool write_posted = false;
  ws_stream* current = nullptr;
  asio::steady_timer* backoff_timer = nullptr;
  bool welcomed = false;
  bool merge_results = false;  // the node reads several results per message
  header_format result_headers = header_format::json;  // as the welcome says
  bool stopping = false;
  bool top_up_posted = false;
  std::uint64_t session = 0;
  std::uint32_t outstanding_demand = 0;  // asked for, not yet received
  std::unordered_map<std::uint64_t, std::shared_ptr<running_task>> running;  // by lease

  // Any thread.
  mutable std::mutex stats_mutex;
  mutable std::condition_variable stats_changed;
  runtime_client_stats stats;  // connection facts (waited on); the task counters below
  // Per-task counters: counted without the lock or a wake-up (nobody waits
  // on them), read into stats() snapshots.
  std::atomic<std::uint64_t> received{0}, succeeded{0}, failed{0}, cancelled{0};
  std::atomic<std::uint32_t> running_count{0};
  std::atomic<bool> run_done{false};

  runtime_connection(runtime_client_config c, runtime_handler h, runtime_immediate_handler i, asio::io_context& context)
      : config(std::move(c)), handler(std::move(h)), immediate(std::move(i)), io(context) {
    rng.seed(config.seed ? config.seed : std::random_device{}());
  }

  template <class F>
  void update_stats(F&& f) {
    {
      std::lock_guard lock(stats_mutex);
      f(stats);
    }
    stats_changed.notify_all();
  }

  /// Writes the outbox once this turn's other frames have joined it: a
  /// posted write, not the writer coroutine woken through its timer (a
  /// cancel, a resume and a wait re-armed per burst: 5 % of a runtime's
  /// thread with 2,500 connections of capacity 1). A failed write wakes the
  /// writer, which tries once more and ends.
  void request_write() {
    if (write_posted || !wake || !current) return;
    write_posted = true;
    asio::post(io, [this, keep = shared_from_this(), writer = wake] {
      write_posted = false;
      if (wake != writer) return;  // that connection ended
      if (write_outbox(*current, *writer)) writer->cancel();
    });
  }

  /// Writes what the outbox holds on `ws`, whose writer is `writer`; true
  /// if a write failed. Unsent frames stay in the outbox: reports go out
  /// again on a resumed session.
  bool write_outbox(ws_stream& ws, asio::steady_timer& writer) {
    close_open_results();
    return write_burst(ws, outbox, wake, writer, merge_results);
  }

  void send(frame_kind kind, out_frame f, std::uint64_t task = 0, std::uint64_t lease = 0) {
    queued_frame q{std::move(f), kind, {}, false};
    if (kind == frame_kind::report) q.reports.push_back({task, lease});
    close_open_results();
    outbox.push_back(std::move(q));
    request_write();
  }

  /// A result record's header fields (the writer adds `bytes`).
  static void write_result_head(record_writer& h, const runtime_task& t) {
    h.field("type", "result").field("task", t.id().value).field("lease", t.lease()).field("slot", runtime_task::access::slot(t));
  }

  /// A result written straight into the open message of results at the
  /// outbox's end (a node that reads several per message): no head of its
  /// own to allocate, and one buffer per message for the writer.
  void send_result(const runtime_task& t, const core::bytes& value) {
    // A result's head is well under this; a message stays under the bound.
    constexpr std::size_t head_bytes_max = 128;
    queued_frame* open = !outbox.empty() && outbox.back().open ? &outbox.back() : nullptr;
    if (open && open->used + head_bytes_max + value.size() > merged_message_bytes_max) close_open_results(), open = nullptr;
    if (!open) {
      outbox.push_back(queued_frame{out_frame{true, {}, {}}, frame_kind::report, {}, true});
      open = &outbox.back();
      // Room for a burst of the runtime's capacity at once, not grown in steps.
      const std::size_t burst = std::max<std::size_t>(config.capacity, 1);
      open->reports.reserve(burst);
      // Capacity only: the writer grows the string (and fills it) as results
      // come, so a lone result does not zero a burst's room.
      open->head.reserve(std::min(burst * (head_bytes_max / 2 + value.size()), merged_message_bytes_max));
    }
    // Written into the room past the records (record_writer's `at`): the
    // message is cut to its records before it is written.
    record_writer h(open->head, open->used, result_headers);
    write_result_head(h, t);
    h.end(value.size());
    open->used = put_body_at(open->head, h.used(), value.view());
    open->reports.push_back({t.id().value, t.lease()});
    request_write();
  }
  /// The open message of results takes no more: cut to its records.
  void close_open_results() {
    if (outbox.empty() || !outbox.back().open) return;
    auto& m = outbox.back();
    m.head.resize(m.used);
    m.open = false;
  }
  void send_text(frame_kind kind, const json::object& o) { send(kind, out_frame{false, json::serialize(o), {}}); }

  std::uint64_t demand_step() const {
    if (config.demand_step > 0) return std::min<std::uint64_t>(config.demand_step, config.capacity);
    return std::max<std::uint64_t>(1, config.capacity / 4);
  }

  /// Asks for as many tasks as there are free handler slots. Posted, so a
  /// burst of completions is answered with one demand message.
  void top_up() {
    if (top_up_posted) return;
    top_up_posted = true;
    asio::post(io, [this, keep = shared_from_this()] {
      top_up_posted = false;
      ask_for_demand();
    });
  }

  void ask_for_demand() {
    if (!welcomed || stopping) return;
    const std::uint64_t used = running.size() + outstanding_demand;
    if (used >= config.capacity) return;
    // Below a step of free slots the node still holds credit (or handlers
    // still run): asking later asks for more at once, so tasks come in
    // fewer, larger messages.
    if (used > 0 && config.capacity - used < demand_step()) return;
    const auto n = static_cast<std::uint32_t>(config.capacity - used);
    outstanding_demand += n;
    if (merge_results) return send_demand_record(n);
    send_text(frame_kind::demand, json::object{{"type", "demand"}, {"n", n}});
  }

  /// Demand as a record (a node that reads several per message): closing
  /// the message of the results that freed it when one waits unsent, else
  /// a message of its own. The node reads it with the results, instead of
  /// a text frame of its own parsed as JSON per batch.
  void send_demand_record(std::uint32_t n) {
    auto write = [n](record_writer& h) {
      h.field("type", "demand").field("n", std::uint64_t{n});
      h.end(0);
    };
    if (!outbox.empty() && outbox.back().open) {
      auto& m = outbox.back();
      m.demand_at = m.used;
      record_writer h(m.head, m.used, result_headers);
      write(h);
      m.used = h.used();
      close_open_results();
      request_write();
      return;
    }
    std::string head;
    record_writer h(head, result_headers);
    write(h);
    send(frame_kind::demand, out_frame{true, std::move(head), {}});
  }

  void report(const runtime_task& t, core::attempt_result outcome) {
    if (outcome.ok && merge_results && outcome.value.size() < merged_message_bytes_max / 2) {
      send_result(t, outcome.value);
    } else if (outcome.ok) {
      record_writer h(result_headers);
      write_result_head(h, t);
      auto head = std::move(h).finish(outcome.value.size());
      send(frame_kind::report, out_frame{true, std::move(head), std::move(outcome.value)}, t.id().value, t.lease());
    } else {
      send(frame_kind::report, out_frame{false, json::serialize(json::object{{"type", "failure"},
                                                 {"task", t.id().value},
                                                 {"lease", t.lease()},
                                                 {"slot", runtime_task::access::slot(t)},
                                                 {"message", outcome.message},
                                                 {"retryable", outcome.retryable}}), {}},
           t.id().value, t.lease());
    }
  }

  /// What a handler that threw reports, coroutine or immediate.
  static core::attempt_result thrown(const std::exception& e) {
    return core::attempt_result::failure(std::string("handler threw: ") + e.what());
  }

  asio::awaitable<void> run_task([[maybe_unused]] keep_alive keep, std::shared_ptr<running_task> r) {
    core::attempt_result outcome;
    try {
      outcome = co_await handler(r->task);
    } catch (const std::exception& e) {
      outcome = thrown(e);
    }
    running.erase(r->task.lease());
    running_count.fetch_sub(1, std::memory_order_relaxed);
    const bool reported = !r->abandoned && !r->task.cancelled();
    if (reported) report(r->task, std::move(outcome));
    (!reported ? cancelled : outcome.ok ? succeeded : failed).fetch_add(1, std::memory_order_relaxed);
    top_up();
  }

  void start_task(const record_header& header, core::bytes payload, std::chrono::steady_clock::time_point now) {
    if (immediate) return run_at_once(header, std::move(payload), now);
    auto r = std::make_shared<running_task>();
    runtime_task::access::fill(r->task, this, header, std::move(payload), now);
    r->session = session;
    if (outstanding_demand > 0) --outstanding_demand;
    if (!running.emplace(r->task.lease(), r).second) return;  // re-sent after a resume: already running
    running_count.fetch_add(1, std::memory_order_relaxed);
    received.fetch_add(1, std::memory_order_relaxed);
    // The completion handler holds the task: asio resumes the spawned
    // coroutine once more after run_task ends, through the slot bound here,
    // so the signal must outlive that (runtime_client_test, "started right
    // after one that finished at once").
    auto slot = r->cancel.slot();
    asio::co_spawn(io, run_task(shared_from_this(), r), asio::bind_cancellation_slot(slot, [r](std::exception_ptr) {}));
  }

  /// An immediate handler's task: run and reported before the next record
  /// is read, so it is never in `running` (nothing can cancel it meanwhile).
  void run_at_once(const record_header& header, core::bytes payload, std::chrono::steady_clock::time_point now) {
    runtime_task t;
    runtime_task::access::fill(t, this, header, std::move(payload), now);
    if (outstanding_demand > 0) --outstanding_demand;
    received.fetch_add(1, std::memory_order_relaxed);
    core::attempt_result outcome;
    try {
      outcome = immediate(t);
    } catch (const std::exception& e) {
      outcome = thrown(e);
    }
    (outcome.ok ? succeeded : failed).fetch_add(1, std::memory_order_relaxed);
    report(t, std::move(outcome));
  }

  void cancel_task(std::uint64_t lease) {
    auto it = running.find(lease);
    if (it == running.end()) return;
    runtime_task::access::mark_cancelled(it->second->task);
    it->second->cancel.emit(asio::cancellation_type::terminal);
  }

  void on_text(std::string_view text) {
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    if (ec || !v.is_object()) return;
    const auto& o = v.as_object();
    auto type = o.if_contains("type");
    if (!type || !type->is_string()) return;
    const std::string_view t = type->as_string();
    if (t == "cancel") {
      if (auto lease = uint_field(o, "lease")) cancel_task(*lease);
    } else if (t == "error") {
      std::string what;
      if (auto c = o.if_contains("code"); c && c->is_string()) what = std::string(c->as_string());
      if (auto m = o.if_contains("message"); m && m->is_string()) what += ": " + std::string(m->as_string());
      update_stats([&](runtime_client_stats& s) { s.last_error = what; });
    }
    // heartbeat answers need nothing
  }

  /// One or more task records.
  void on_binary(std::string&& text) {
    const auto message = core::bytes::adopt(std::move(text));
    const auto now = std::chrono::steady_clock::now();  // the tasks' deadlines count from here
    for_each_record(message.view(), [&](const frame_record& r) {
      if (r.header.string("type") == "task") start_task(r.header, message.slice(r.body_offset, r.body_size), now);
    });
    // Immediate handlers are done with the whole message: the demand for
    // their slots is queued behind their results, and the writer sends both
    // at once (a posted top-up would come after the writer's burst, a send
    // of its own).
    if (immediate) ask_for_demand();
  }

  /// After the welcome: what survives from the previous connection.
  void on_welcome(const json::object& w) {
    const auto id = uint_field(w, "session").value_or(0);
    auto resumed = w.if_contains("resumed");
    const bool kept = resumed && resumed->is_bool() && resumed->as_bool() && id == session;
    std::erase_if(outbox, [&](const queued_frame& f) { return f.kind == frame_kind::demand || !kept; });
    for (auto& f : outbox)
      if (f.demand_at != std::string::npos) f.head.resize(std::exchange(f.demand_at, std::string::npos));
    if (kept) {
      outstanding_demand = static_cast<std::uint32_t>(uint_field(w, "granted").value_or(0));
    } else {
      outstanding_demand = 0;
      // The old session's leases are gone: its handlers' outcomes cannot be reported.
      for (auto& [lease, r] : running)
        if (!r->abandoned) {
          r->abandoned = true;
          runtime_task::access::mark_cancelled(r->task);
          r->cancel.emit(asio::cancellation_type::terminal);
        }
    }
    session = id;
    welcomed = true;
    auto batch = w.if_contains("batch");
    merge_results = batch && batch->is_bool() && batch->as_bool();
    // A node that does not say (an older one) gets JSON.
    const auto* headers = w.if_contains("headers");
    result_headers = headers && headers->is_string() ? header_format_named(headers->as_string()).value_or(header_format::json)
                                                     : header_format::json;
    update_stats([&](runtime_client_stats& s) {
      s.connected = true, s.session = id, ++s.connects;
      if (kept) ++s.resumed;
    });
  }

  json::object hello() const {
    json::array queues;
    for (const auto& q : config.queues) queues.emplace_back(q);
    json::object h{{"type", "hello"},         {"runtime", config.name},           {"queues", std::move(queues)},
                   {"capacity", config.capacity}, {"resumable", config.resumable},
                   {"batch", config.batch},
                   {"headers", to_string(config.compact_headers ? header_format::compact : header_format::json)}};
    if (!config.token.empty()) h["token"] = config.token;
    if (session != 0 && config.resumable) {
      h["session"] = session;
      json::array holding;
      for (const auto& [lease, r] : running)
        if (!r->abandoned) holding.push_back(json::object{{"task", r->task.id().value}, {"lease", lease}});
      // Finished, its report not sent yet: still ours, or the node would send it again to run twice.
      for (const auto& f : outbox)
        for (const auto& held : f.reports) holding.push_back(json::object{{"task", held.task}, {"lease", held.lease}});
      h["holding"] = std::move(holding);
    }
    return h;
  }

  static asio::awaitable<void> write_loop(keep_alive self, ws_stream& ws, asio::steady_timer& wake, std::shared_ptr<bool> done) {
    writer_end guard{std::move(done)};
    for (;;) {
      if (self->write_outbox(ws, wake)) co_return;
      if (self->wake != &wake) co_return;
      co_await wait_for_frames(wake);
    }
  }

  /// One connection, from connect to its end; true if the node welcomed it.
  asio::awaitable<bool> connect_once([[maybe_unused]] keep_alive keep) {
    const auto ex = co_await asio::this_coro::executor;
    tcp::resolver resolver(ex);
    auto [rec, endpoints] = co_await resolver.async_resolve(config.host, std::to_string(config.port), tuple);
    if (rec) co_return false;
    beast::tcp_stream connecting(ex);  // for its timeout; the WebSocket takes the bare socket
    connecting.expires_after(std::chrono::seconds(10));
    auto [cec, ep] = co_await connecting.async_connect(endpoints, tuple);
    if (cec) co_return false;
    ws_stream ws(connecting.release_socket());
    beast::error_code ignored;
    beast::get_lowest_layer(ws).set_option(tcp::no_delay(true), ignored);
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::seconds(10);
    timeouts.idle_timeout = std::chrono::seconds(30);
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.read_message_max(config.frame_bytes_max);
    ws.auto_fragment(false);  // a message is one frame: Beast's 4 KiB fragments cost a write and a header each
    current = &ws;
    struct forget {
      runtime_connection* self;
      ~forget() { self->current = nullptr; }
    } forget_current{this};
    auto [hec] = co_await ws.async_handshake(config.host, "/v1/runtime", tuple);
    if (hec || stopping) co_return false;
    ws.text(true);
    auto [wec, wn] = co_await ws.async_write(asio::buffer(json::serialize(hello())), tuple);
    if (wec) co_return false;
    std::string first;
    auto first_buffer = asio::dynamic_buffer(first);
    auto [fec, fn] = co_await ws.async_read(first_buffer, tuple);
    if (fec) co_return false;
    boost::system::error_code pec;
    json::value w = json::parse(first, pec);
    if (pec || !w.is_object()) co_return false;
    auto type = w.as_object().if_contains("type");
    if (!type || !type->is_string() || type->as_string() != "welcome") {
      on_text(first);  // an error: remembered in the stats
      co_return false;
    }
    on_welcome(w.as_object());
    // Silence allowed from the node: four heartbeats (an idle node pings
    // every 1.5 heartbeats and this side pings after two of silence, so it
    // never pings a live node and keepalive traffic is one ping/pong, not two).
    // Watched by our own timer, not Beast's idle timeout: Beast re-arms its
    // timer on every read, a timerfd_settime system call per message here.
    const auto hb = uint_field(w.as_object(), "heartbeat_ms").value_or(0);
    const auto silence_limit = hb > 0 ? std::chrono::milliseconds(4 * hb)
                                      : std::chrono::duration_cast<std::chrono::milliseconds>(timeouts.idle_timeout);
    peer_watcher<ws_stream> watch(ws, timeouts, silence_limit);

    asio::steady_timer wake_timer(ex);
    wake = &wake_timer;
    auto writer_done = std::make_shared<bool>(false);
    asio::co_spawn(ex, write_loop(shared_from_this(), ws, wake_timer, writer_done), asio::detached);
    top_up();
    read_buffers buffers;
    for (;;) {
      std::string message = buffers.next();
      auto dyn = asio::dynamic_buffer(message);
      auto [ec, n] = co_await ws.async_read(dyn, tuple);
      buffers.fit(message);
      if (ec) break;
      watch.heard.note();
      if (ws.got_text()) {
        on_text(message);
      } else {
        on_binary(std::move(message));
      }
    }
    welcomed = false;
    wake = nullptr;
    wake_timer.cancel();
    watch.stop();
    update_stats([](runtime_client_stats& s) { s.connected = false; });
    co_await wait_for_writer(writer_done);
    co_await watch.until_stopped();
    co_return true;
  }

  asio::awaitable<void> run(keep_alive keep) {
    struct mark_done {
      runtime_connection* self;
      ~mark_done() {
        self->update_stats([this](runtime_client_stats&) { self->run_done = true; });
      }
    } done{this};
    auto delay = config.reconnect_first;
    asio::steady_timer pause(co_await asio::this_coro::executor);
    backoff_timer = &pause;
    while (!stopping) {
      const bool welcomed_once = co_await connect_once(keep);
      if (stopping) break;
      if (welcomed_once) delay = config.reconnect_first;
      // Jitter (half to all of the delay) spreads out runtimes reconnecting together.
      std::uniform_int_distribution<long> jitter(delay.count() / 2, delay.count());
      pause.expires_after(std::chrono::milliseconds(jitter(rng)));
      co_await pause.async_wait(tuple);
      delay = std::min(delay * 2, config.reconnect_max);
    }
    backoff_timer = nullptr;
  }

  /// On the I/O thread: a clean close, so the node releases leases at once.
  asio::awaitable<void> close_cleanly([[maybe_unused]] keep_alive keep) {
    stopping = true;
    if (backoff_timer) backoff_timer->cancel();
    for (auto& [lease, r] : running) {
      runtime_task::access::mark_cancelled(r->task);
      r->cancel.emit(asio::cancellation_type::terminal);
    }
    if (current && welcomed) {
      co_await current->async_close(websocket::close_code::going_away, tuple);
    } else if (current) {
      beast::get_lowest_layer(*current).cancel();
    }
  }
};

}  // namespace detail

std::string_view runtime_task::meta(std::string_view key) const {
  for (const auto& [k, v] : meta_)
    if (k == key) return v;
  return {};
}

void runtime_task::progress(double fraction, std::string_view note) {
  if (!owner_ || cancelled_) return;
  owner_->send_text(frame_kind::other, json::object{{"type", "progress"},
                                                           {"task", id_.value},
                                                           {"lease", lease_},
                                                           {"fraction", std::clamp(fraction, 0.0, 1.0)},
                                                           {"note", note}});
}

void runtime_task::log(std::string_view line) {
  if (!owner_ || cancelled_) return;
  owner_->send_text(frame_kind::other,
                    json::object{{"type", "log"}, {"task", id_.value}, {"lease", lease_}, {"line", line}});
}

runtime_client::runtime_client(std::shared_ptr<detail::runtime_connection> c, std::shared_ptr<runtime_io> io)
    : impl_(std::move(c)), io_(std::move(io)) {}

runtime_client::~runtime_client() { stop(std::chrono::milliseconds(0)); }

std::unique_ptr<runtime_client> runtime_client::start(runtime_client_config config, runtime_handler handler) {
  return start(std::move(config), std::move(handler), runtime_io::start());
}

std::unique_ptr<runtime_client> runtime_client::start(runtime_client_config config, runtime_handler handler,
                                                      std::shared_ptr<runtime_io> io) {
  if (!handler) throw std::invalid_argument("a runtime needs a handler");
  return start_connection(std::move(config), std::move(handler), {}, std::move(io));
}

std::unique_ptr<runtime_client> runtime_client::start(runtime_client_config config, runtime_immediate_handler handler) {
  return start(std::move(config), std::move(handler), runtime_io::start());
}

std::unique_ptr<runtime_client> runtime_client::start(runtime_client_config config, runtime_immediate_handler handler,
                                                      std::shared_ptr<runtime_io> io) {
  if (!handler) throw std::invalid_argument("a runtime needs a handler");
  return start_connection(std::move(config), {}, std::move(handler), std::move(io));
}

std::unique_ptr<runtime_client> runtime_client::start_connection(runtime_client_config config, runtime_handler handler,
                                                                 runtime_immediate_handler immediate,
                                                                 std::shared_ptr<runtime_io> io) {
  if (config.queues.empty()) throw std::invalid_argument("a runtime serves at least one queue");
  if (config.capacity < 1 || config.capacity > 65'535) throw std::invalid_argument("capacity must be 1 to 65535");
  if (!io) throw std::invalid_argument("a runtime needs an I/O thread");
  if (config.reconnect_first.count() < 1) config.reconnect_first = std::chrono::milliseconds(1);
  if (config.reconnect_max < config.reconnect_first) config.reconnect_max = config.reconnect_first;
  auto c = std::make_shared<detail::runtime_connection>(std::move(config), std::move(handler), std::move(immediate),
                                                        io->context());
  asio::co_spawn(c->io, c->run(c), asio::detached);
  return std::unique_ptr<runtime_client>(new runtime_client(std::move(c), std::move(io)));
}

bool runtime_client::wait_connected(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->stats_mutex);
  return impl_->stats_changed.wait_for(lock, timeout, [&] { return impl_->stats.connected; });
}

runtime_client_stats runtime_client::stats() const {
  runtime_client_stats out;
  {
    std::lock_guard lock(impl_->stats_mutex);
    out = impl_->stats;
  }
  out.received = impl_->received.load(std::memory_order_relaxed);
  out.succeeded = impl_->succeeded.load(std::memory_order_relaxed);
  out.failed = impl_->failed.load(std::memory_order_relaxed);
  out.cancelled = impl_->cancelled.load(std::memory_order_relaxed);
  out.running = impl_->running_count.load(std::memory_order_relaxed);
  return out;
}

void runtime_client::stop(std::chrono::milliseconds grace) {
  if (!io_) return;
  auto& p = *impl_;
  asio::post(p.io, [keep = impl_] { keep->stopping = true; });  // no more demand
  const auto until = std::chrono::steady_clock::now() + grace;
  while (p.running_count.load(std::memory_order_relaxed) > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  asio::co_spawn(p.io, p.close_cleanly(impl_), asio::detached);
  {
    std::unique_lock lock(p.stats_mutex);
    p.stats_changed.wait_for(lock, std::chrono::seconds(2), [&] { return p.run_done.load(); });
  }
  io_.reset();
}

}  // namespace drover::net
