#include "runtime_session.hpp"

#include <array>
#include <deque>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include "io_poster.hpp"
#include "json_fields.hpp"

namespace drover::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

namespace {

constexpr std::uint32_t capacity_max = 65'535;
constexpr std::size_t frame_header_bytes_max = 64 * 1024;

struct out_frame {
  bool binary = false;
  std::string head;  // text: the JSON; binary: 4-byte length + JSON header
  core::bytes body;  // binary: the payload, sent as is (gather write, no copy)
};

/// Shared between the session coroutines (I/O thread) and the sink (CAF
/// threads, through the poster). Holds no asio object: it may outlive the
/// I/O context inside a dropped callback.
struct session_state {
  std::deque<out_frame> outbox;
  asio::steady_timer* wake = nullptr;  // the writer's; null once the session ended
  bool closing = false;
  bool writer_done = false;
  std::uint32_t capacity = 0;
  std::uint64_t granted = 0;  // demand sent to the broker, not yet filled
  std::uint64_t held = 0;     // tasks delivered, not yet reported or revoked
  core::consumer_id id;

  void send(out_frame f) {
    if (!wake) return;
    outbox.push_back(std::move(f));
    wake->cancel();
  }
};

std::string text_of(const json::object& o) { return json::serialize(o); }

out_frame text_frame(const json::object& o) { return out_frame{false, text_of(o), {}}; }

out_frame error_frame(std::string_view code, std::string_view message) {
  return text_frame(json::object{{"type", "error"}, {"code", code}, {"message", message}});
}

std::string binary_head(const json::object& header) {
  const std::string h = json::serialize(header);
  std::string head(4, '\0');
  const auto n = static_cast<std::uint32_t>(h.size());
  head[0] = static_cast<char>(n >> 24), head[1] = static_cast<char>(n >> 16);
  head[2] = static_cast<char>(n >> 8), head[3] = static_cast<char>(n);
  return head + h;
}

out_frame task_frame(const actors::remote_task& t) {
  const auto& item = t.item;
  json::object meta;
  if (item.meta)
    for (const auto& [k, v] : *item.meta) meta[k] = v;
  json::object header{{"type", "task"},           {"task", item.id.value},   {"lease", item.lease.value},
                      {"slot", item.slot},         {"attempt", item.attempt}, {"queue", t.queue},
                      {"deadline_ms", ms_left(item.deadline)}, {"meta", std::move(meta)}};
  return out_frame{true, binary_head(header), item.payload};
}

/// The sink the runtime's consumer actor calls on CAF threads.
class ws_sink final : public actors::remote_sink {
 public:
  ws_sink(std::shared_ptr<io_poster> p, std::shared_ptr<session_state> s) : poster_(std::move(p)), state_(std::move(s)) {}

  void joined(core::consumer_id id) override {
    poster_->post([s = state_, id] {
      s->id = id;
      s->send(text_frame(json::object{{"type", "welcome"}, {"session", id.value}, {"capacity", s->capacity}}));
    });
  }
  void deliver(std::vector<actors::remote_task> tasks) override {
    std::vector<out_frame> frames;
    frames.reserve(tasks.size());
    for (const auto& t : tasks) frames.push_back(task_frame(t));  // serialised here, off the I/O thread
    poster_->post([s = state_, frames = std::move(frames)]() mutable {
      s->granted -= std::min<std::uint64_t>(s->granted, frames.size());
      s->held += frames.size();
      for (auto& f : frames) s->send(std::move(f));
    });
  }
  void revoke(std::vector<core::cancel_notice> notices) override {
    poster_->post([s = state_, notices = std::move(notices)] {
      for (const auto& n : notices) {
        if (s->held > 0) --s->held;
        s->send(text_frame(json::object{{"type", "cancel"}, {"task", n.task.value}, {"lease", n.lease.value}}));
      }
    });
  }
  void refused(core::task_id task, core::lease_id lease, core::error why) override {
    poster_->post([s = state_, task, lease, why = std::move(why)] {
      s->send(text_frame(json::object{{"type", "error"}, {"code", core::to_string(why.code)},
                                      {"message", why.message}, {"task", task.value}, {"lease", lease.value}}));
    });
  }
  void failed(core::error why) override {
    poster_->post([s = state_, why = std::move(why)] {
      s->send(error_frame(core::to_string(why.code), why.message));
      s->closing = true;
    });
  }

 private:
  std::shared_ptr<io_poster> poster_;
  std::shared_ptr<session_state> state_;
};

using ws_stream = websocket::stream<beast::tcp_stream>;

/// The single writer: one write at a time, frames in order. A named
/// coroutine with plain parameters, not a capturing lambda: with a lambda,
/// valgrind saw its captures released from freed memory when the gateway
/// shut down with the session open (docs/stack-notes.md).
asio::awaitable<void> write_loop(ws_stream& ws, std::shared_ptr<session_state> s, asio::steady_timer& wake) {
  struct mark_done {
    session_state& s;
    ~mark_done() { s.writer_done = true; }
  } done{*s};
  for (;;) {
    while (!s->outbox.empty()) {
      out_frame f = std::move(s->outbox.front());
      s->outbox.pop_front();
      ws.binary(f.binary);
      beast::error_code ec;
      if (f.binary) {
        std::array<asio::const_buffer, 2> parts{asio::buffer(f.head), asio::buffer(f.body.data(), f.body.size())};
        std::tie(ec, std::ignore) = co_await ws.async_write(parts, tuple);
      } else {
        std::tie(ec, std::ignore) = co_await ws.async_write(asio::buffer(f.head), tuple);
      }
      if (ec) co_return;
    }
    if (s->closing) {
      co_await ws.async_close(websocket::close_code::policy_error, tuple);
      co_return;
    }
    wake.expires_at(asio::steady_timer::time_point::max());
    co_await wake.async_wait(tuple);  // cancelled when a frame is queued
    if (!s->wake) co_return;  // session over
  }
}

struct hello_result {
  std::vector<std::string> queues;
  std::uint32_t capacity = 0;
  websocket::close_code close = websocket::close_code::normal;  // != normal: refuse with this
  std::string code, message;
};

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
  return h;
}

/// A text message after the hello.
void on_text(std::string_view text, session_state& s, actors::remote_link& link) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return s.send(error_frame("bad_json", "messages must be JSON objects"));
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string()) return s.send(error_frame("bad_message", "every message needs a string 'type'"));
  const std::string_view t = type->as_string();
  if (t == "demand") {
    auto n = uint_field(o, "n");
    if (!n || *n == 0 || *n > capacity_max) return s.send(error_frame("invalid_argument", "demand n must be 1 to 65535"));
    if (s.granted + s.held + *n > s.capacity)
      return s.send(error_frame("over_capacity", "demand beyond the capacity declared in hello"));
    s.granted += *n;
    link.demand(static_cast<std::uint32_t>(*n));
    return;
  }
  if (t == "failure") {
    auto task = uint_field(o, "task"), lease = uint_field(o, "lease");
    if (!task || !lease) return s.send(error_frame("invalid_argument", "failure needs task and lease"));
    auto message = o.if_contains("message");
    auto retryable = o.if_contains("retryable");
    std::string why = message && message->is_string() ? std::string(message->as_string()) : "runtime reported failure";
    const bool retry = !(retryable && retryable->is_bool() && !retryable->as_bool());
    if (s.held > 0) --s.held;
    const auto slot = uint_field(o, "slot").value_or(UINT32_MAX);
    link.report({actors::remote_report{core::task_id{*task}, core::lease_id{*lease},
                                       core::attempt_result::failure(std::move(why), retry),
                                       static_cast<std::uint32_t>(slot)}});
    return;
  }
  if (t == "heartbeat") return s.send(text_frame(json::object{{"type", "heartbeat"}}));
  s.send(error_frame("unknown_type", "unknown message type '" + std::string(t) + "'"));
}

/// A binary message after the hello: a result.
void on_binary(std::string&& frame, session_state& s, actors::remote_link& link) {
  if (frame.size() < 4) return s.send(error_frame("bad_frame", "a binary frame starts with a 4-byte header length"));
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data());
  const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
  if (len > frame.size() - 4 || len > frame_header_bytes_max)
    return s.send(error_frame("bad_frame", "header length beyond the frame"));
  boost::system::error_code ec;
  json::value v = json::parse(std::string_view(frame.data() + 4, len), ec);
  if (ec || !v.is_object()) return s.send(error_frame("bad_json", "the frame header must be a JSON object"));
  const auto& o = v.as_object();
  auto type = o.if_contains("type");
  if (!type || !type->is_string() || type->as_string() != "result")
    return s.send(error_frame("unknown_type", "binary frames from a runtime are results"));
  auto task = uint_field(o, "task"), lease = uint_field(o, "lease");
  if (!task || !lease) return s.send(error_frame("invalid_argument", "result needs task and lease"));
  const auto slot = static_cast<std::uint32_t>(uint_field(o, "slot").value_or(UINT32_MAX));
  if (s.held > 0) --s.held;
  // The result's bytes stay in the frame's buffer: no copy.
  auto value = core::bytes::adopt(std::move(frame), 4 + len);
  link.report({actors::remote_report{core::task_id{*task}, core::lease_id{*lease},
                                     core::attempt_result::success(std::move(value)), slot}});
}

}  // namespace

asio::awaitable<void> run_runtime_session(runtime_session_context ctx, beast::tcp_stream stream,
                                          beast::http::request<beast::http::string_body> upgrade) {
  stream.expires_never();  // the websocket's own timeouts (with pings) take over
  ws_stream ws(std::move(stream));
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  ws.read_message_max(ctx.config.body_bytes_max + frame_header_bytes_max);
  auto [accept_ec] = co_await ws.async_accept(upgrade, tuple);
  if (accept_ec) co_return;

  std::string first;
  auto buffer = asio::dynamic_buffer(first);
  auto [hello_ec, hello_n] = co_await ws.async_read(buffer, tuple);
  if (hello_ec) co_return;
  hello_result hello = ws.got_binary() ? hello_result{{}, 0, websocket::close_code::bad_payload, "expected_hello",
                                                      "the first message must be a text hello"}
                                       : parse_hello(first, ctx.config);
  if (hello.close != websocket::close_code::normal) {
    ws.text(true);
    const auto err = text_of(json::object{{"type", "error"}, {"code", hello.code}, {"message", hello.message}});
    co_await ws.async_write(asio::buffer(err), tuple);
    co_await ws.async_close(websocket::close_reason(hello.close, hello.message), tuple);
    co_return;
  }

  auto state = std::make_shared<session_state>();
  state->capacity = hello.capacity;
  asio::steady_timer wake(co_await asio::this_coro::executor);
  state->wake = &wake;
  auto poster = ctx.make_poster();
  auto link = ctx.n.attach_remote(hello.queues, std::make_shared<ws_sink>(poster, state));
  // However the session ends (close, error, gateway stop): no more posts,
  // the consumer ends (the broker releases the runtime's leases).
  struct cleanup {
    std::shared_ptr<session_state> s;
    std::shared_ptr<io_poster> p;
    actors::remote_link* l;
    ~cleanup() {
      p->close();
      s->wake = nullptr;
      l->close();
    }
  } guard{state, poster, link.get()};

  asio::co_spawn(co_await asio::this_coro::executor, write_loop(ws, state, wake), asio::detached);
  for (;;) {
    std::string message;
    auto dyn = asio::dynamic_buffer(message);
    auto [ec, n] = co_await ws.async_read(dyn, tuple);
    if (ec) break;  // closed, timed out (no pong), or too big (Beast answers 1009)
    if (ws.got_text()) {
      on_text(message, *state, *link);
    } else {
      on_binary(std::move(message), *state, *link);
    }
    if (state->closing) break;
  }
  // Let the writer finish what is queued (a final error frame) before the frame goes.
  state->closing = true;
  wake.cancel();
  while (!state->writer_done) {  // the writer refers to `ws` and `wake`: they must outlive it
    asio::steady_timer pause(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
    co_await pause.async_wait(tuple);
  }
}

}  // namespace drover::net
