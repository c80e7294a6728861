#include "drover/net/gateway.hpp"

#include <atomic>
#include <mutex>
#include <span>
#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json.hpp>

#include "client_session.hpp"
#include "http_target.hpp"
#include "hangup_watch.hpp"
#include "io_poster.hpp"
#include "json_fields.hpp"
#include "broker_answer.hpp"
#include "drover/actors/spin_governor.hpp"
#include "end_of_turn.hpp"
#include "io_spin.hpp"
#include "poll_sessions.hpp"
#include "runtime_name.hpp"
#include "runtime_session.hpp"
#include "retained_tasks.hpp"
#include "submit_options.hpp"
#include "kept_outcomes.hpp"
#include "task_follower.hpp"
#include "task_notes.hpp"

namespace drover::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using string_response = http::response<http::string_body>;
using request = http::request<http::string_body>;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds broker_answer_limit{10'000};  // the broker answers within a turn

namespace {

/// What a route answers: JSON (or empty) in `res`, or raw result bytes.
struct reply {
  string_response res;
  std::optional<core::bytes> raw;  // sent as the body, without a copy
};

reply json_reply(http::status status, const json::value& body, const request& req) {
  reply r{string_response{status, req.version()}, std::nullopt};
  r.res.set(http::field::content_type, "application/json");
  r.res.body() = json::serialize(body);
  r.res.keep_alive(req.keep_alive());
  r.res.prepare_payload();
  return r;
}

reply error_reply(http::status status, std::string_view code, std::string_view message, const request& req) {
  return json_reply(status, json::object{{"error", code}, {"message", message}}, req);
}

http::status status_of(core::errc code) {
  switch (code) {
    case core::errc::unknown_queue:
    case core::errc::unknown_task: return http::status::not_found;
    case core::errc::queue_full: return http::status::too_many_requests;
    case core::errc::payload_too_large: return http::status::payload_too_large;
    case core::errc::shutting_down: return http::status::service_unavailable;
    default: return http::status::bad_request;
  }
}

reply unauthorized_reply(const request& req) {
  auto r = error_reply(http::status::unauthorized, "unauthorized", "a valid bearer token is required", req);
  r.res.set(http::field::www_authenticate, "Bearer");
  return r;
}

reply error_reply(const core::error& e, const request& req) {
  return error_reply(status_of(e.code), core::to_string(e.code), e.message, req);
}

json::object describe_outcome(const core::task_outcome& c) {
  json::object o{{"id", c.id.value}, {"state", core::to_string(c.state)}, {"done", true}, {"attempts", c.attempts}};
  if (c.state == task_state::succeeded) o["result_bytes"] = c.value.size();
  if (c.err) o["error"] = json::object{{"code", core::to_string(c.err.code)}, {"message", c.err.message}};
  return o;
}

json::object describe(const task_handle& h) {
  json::object o{{"id", h.id().value}, {"state", core::to_string(h.state())}, {"done", h.done()}};
  if (!h.done()) return o;
  auto c = h.wait();  // done: returns at once
  if (!c) {
    o["error"] = json::object{{"code", core::to_string(c.err().code)}, {"message", c.err().message}};
    return o;
  }
  return describe_outcome(*c);
}

/// Stops following a task when the request ends before the task does.
struct unfollow {
  node& n;
  std::uint64_t id;
  std::shared_ptr<task_follower> follower;
  bool following = false;
  ~unfollow() {
    if (following && !follower->news()->ended()) n.unwatch(task_id{id}, follower);
  }
};

/// Reads the submit options from the query string; nothing = a 400 was built.
std::optional<core::task_options> submit_options(const http_target& t, const request& req, reply& bad) {
  auto o = read_submit_options([&](record_key key, std::uint64_t max, std::uint64_t& out) {
    const std::string_view name = key.name();
    const std::string* text = t.param(name);
    if (!text) return true;
    auto v = parse_number<std::uint64_t>(*text, 0, max);
    if (!v) {
      bad = error_reply(http::status::bad_request, "invalid_argument",
                        std::string("query parameter '").append(name) + "' must be a whole number from 0 to " +
                            std::to_string(max),
                        req);
      return false;
    }
    out = *v;
    return true;
  });
  if (!o) return std::nullopt;
  if (const std::string* key = t.param("idempotency_key")) o->idempotency_key = *key;
  if (auto it = req.find("Idempotency-Key"); it != req.end()) o->idempotency_key = std::string(it->value());
  return o;
}

}  // namespace

constexpr std::size_t batch_max = 10'000;
// Actor turns per run of the node's actors; then I/O gets its turn again.
constexpr std::size_t actor_turns_per_run = 256;
/// Sessions' paced work (task deliveries) run per loop turn: as many as the
/// consumer actors that carried them before took turns per run.
constexpr std::size_t paced_per_run = 256;

struct gateway::impl {
  node& n;
  gateway_config config;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::shared_ptr<io_poster> post_to_io = std::make_shared<io_poster>(io.get_executor());
  std::mutex posters_mutex;
  std::vector<std::weak_ptr<io_poster>> posters;  // one per runtime session, closed at stop

  std::shared_ptr<io_poster> make_poster() {
    auto p = std::make_shared<io_poster>(io.get_executor());
    std::lock_guard lock(posters_mutex);
    std::erase_if(posters, [](const std::weak_ptr<io_poster>& w) { return w.expired(); });
    posters.push_back(p);
    return p;
  }

  void close_posters() {
    post_to_io->close();
    std::lock_guard lock(posters_mutex);
    for (auto& w : posters)
      if (auto p = w.lock()) p->close();
  }
  retained_tasks retained;
  kept_outcomes kept{config.results_retained};  // of acknowledged /v1/client submits
  task_notes notes{config.notes_retained};
  poll_sessions polls{n, config, notes};
  runtime_registry parked_runtimes;  // after `io`: its timers go first
  std::thread thread;
  bool hosting = false;      // this loop runs the node's actors (node_config::hostable_actors)
  bool actors_due = false;   // I/O thread only: the node asked for a run of its actors
  std::atomic<bool> stopped{false};

  impl(node& node_, gateway_config c) : n(node_), config(std::move(c)), retained(config.results_retained) {}

  bool authorized(const request& req) const {
    if (config.tokens.empty()) return true;
    auto it = req.find(http::field::authorization);
    if (it == req.end()) return false;
    const std::string_view value = it->value();
    constexpr std::string_view scheme = "Bearer ";
    if (!value.starts_with(scheme)) return false;
    const auto token = value.substr(scheme.size());
    for (const auto& t : config.tokens)
      if (t == token) return true;
    return false;
  }

  reply submit(const std::string& queue, const http_target& t, request& req) {
    reply bad;
    auto options = submit_options(t, req, bad);
    if (!options) return bad;
    // The body becomes the payload without a copy: Beast read it into this string.
    auto payload = core::bytes::adopt(std::move(req.body()));
    auto h = n.submit(queue, std::move(payload), std::move(*options), when_full::fail);
    expect_broker_reply();
    note_submits(1);
    if (!h) return error_reply(h.err(), req);
    retained.add(*h);
    return json_reply(http::status::accepted,
                      json::object{{"id", h->id().value}, {"queue", queue}, {"state", core::to_string(h->state())}},
                      req);
  }

  /// `POST /v1/queues/{queue}/batch`: many tasks with the query's options, all or none.
  reply submit_batch(const std::string& queue, const http_target& t, request& req) {
    reply bad;
    auto options = submit_options(t, req, bad);
    if (!options) return bad;
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    const json::array* tasks = nullptr;
    if (!ec && body.is_object())
      if (auto list = body.as_object().if_contains("tasks")) tasks = list->if_array();
    if (!tasks || tasks->empty())
      return error_reply(http::status::bad_request, "bad_json", "the body must be {\"tasks\":[{\"payload\":...}, ...]}", req);
    if (tasks->size() > batch_max)
      return error_reply(http::status::payload_too_large, "too_large", "at most 10000 tasks per batch", req);
    std::vector<core::bytes> payloads;
    payloads.reserve(tasks->size());
    for (std::size_t i = 0; i < tasks->size(); ++i) {
      const auto* task = (*tasks)[i].if_object();
      const auto* text = task ? task->if_contains("payload") : nullptr;
      const auto* encoded = task ? task->if_contains("payload_base64") : nullptr;
      std::optional<std::string> bytes;
      if (text && text->is_string()) bytes = std::string(text->as_string());
      else if (encoded && encoded->is_string()) bytes = from_base64(encoded->as_string());
      if (!bytes)
        return error_reply(http::status::bad_request, "invalid_argument",
                           "task " + std::to_string(i) + " needs a string payload or a valid payload_base64", req);
      payloads.push_back(core::bytes::adopt(std::move(*bytes)));
    }
    auto handles = n.submit_batch(queue, std::move(payloads), std::move(*options), when_full::fail);
    if (!handles) return error_reply(handles.err(), req);
    expect_broker_reply();
    note_submits(handles->size());
    json::array ids;
    for (const auto& h : *handles) {
      retained.add(h);
      ids.emplace_back(h.id().value);
    }
    return json_reply(http::status::accepted, json::object{{"queue", queue}, {"ids", std::move(ids)}}, req);
  }

  asio::awaitable<reply> status(std::uint64_t id, const http_target& t, const request& req, tcp::socket& peer) {
    std::optional<std::uint64_t> wait_ms;
    if (const std::string* wait = t.param("wait_ms")) {
      wait_ms = parse_number<std::uint64_t>(*wait, 0, static_cast<std::uint64_t>(config.wait_max.count()));
      if (!wait_ms)
        co_return error_reply(http::status::bad_request, "invalid_argument",
                              "wait_ms must be a whole number from 0 to " + std::to_string(config.wait_max.count()), req);
    }
    auto h = retained.find(id);
    if (!h) co_return co_await status_of_live(id, wait_ms, req, peer);
    if (wait_ms && !h->done()) {
      // The handle has the outcome by the time the follower hears of it.
      unfollow follow{n, id, std::make_shared<task_follower>(post_to_io)};
      co_await follow_until_end(follow, std::chrono::milliseconds(*wait_ms), peer);
    }
    json::object o = describe(*h);
    notes.describe(id, o);
    co_return json_reply(http::status::ok, o, req);
  }

  /// A task not submitted over HTTP (so not retained): the broker's view
  /// while it lives; with `wait_ms`, followed (node::watch) until its
  /// outcome or the time is up.
  asio::awaitable<reply> status_of_live(std::uint64_t id, std::optional<std::uint64_t> wait_ms, const request& req,
                                        tcp::socket& peer) {
    auto unknown = [&] {
      return error_reply(http::status::not_found, "unknown_task",
                         "task " + std::to_string(id) + " is unknown or its outcome is no longer kept", req);
    };
    auto ended = [&](const core::task_outcome& outcome) {
      json::object o = describe_outcome(outcome);
      notes.describe(id, o);
      return json_reply(http::status::ok, o, req);
    };
    if (auto o = kept.find(id)) co_return ended(*o);
    if (wait_ms) {
      unfollow follow{n, id, std::make_shared<task_follower>(post_to_io)};
      const auto& news = *follow.follower->news();
      co_await follow_until_end(follow, std::chrono::milliseconds(*wait_ms), peer);
      if (news.outcome) co_return ended(*news.outcome);
      if (news.rejected) {
        if (auto o = kept.find(id)) co_return ended(*o);  // it ended as the watch arrived
        co_return unknown();
      }
    }
    std::function<void(std::function<void(core::result<core::task_status>)>)> ask = [this, id](auto done) {
      n.status_async(task_id{id}, std::move(done));
    };
    auto answer = co_await broker_answer<core::result<core::task_status>>(post_to_io, std::move(ask), broker_answer_limit);
    if (!answer) co_return error_reply(http::status::service_unavailable, "shutting_down", "the node is stopping", req);
    auto& s = *answer;
    if (!s) {
      if (auto o = kept.find(id)) co_return ended(*o);
      co_return unknown();
    }
    json::object o{{"id", id}, {"state", core::to_string(s->state)}, {"attempts", s->attempt}, {"done", false}};
    notes.describe(id, o);
    co_return json_reply(http::status::ok, o, req);
  }

  /// Long-poll: follows task `id` (node::watch) until it ends or `limit`
  /// passes, suspending this connection (no thread, no polling); what the
  /// broker said is in the follower's news.
  /// A client that hangs up meanwhile ends the wait (its watch taken off).
  asio::awaitable<void> follow_until_end(unfollow& follow, std::chrono::milliseconds limit, tcp::socket& peer) {
    auto& news = *follow.follower->news();
    n.watch(task_id{follow.id}, follow.follower);
    follow.following = true;
    hangup_watch hangup(peer, [&] {
      if (news.waiter) news.waiter->cancel();
    });
    const auto until = std::chrono::steady_clock::now() + limit;
    for (auto now = std::chrono::steady_clock::now(); !news.ended() && !hangup.hung_up() && now < until;
         now = std::chrono::steady_clock::now())
      co_await wait_for_news(news, news.version, std::chrono::ceil<std::chrono::milliseconds>(until - now));
  }

  reply result(std::uint64_t id, const request& req) {
    auto h = retained.find(id);
    if (!h) return error_reply(http::status::not_found, "unknown_task", "task " + std::to_string(id) + " is unknown", req);
    if (!h->done()) return error_reply(http::status::conflict, "not_done", "the task has no outcome yet", req);
    auto c = h->wait();
    if (!c || c->state != task_state::succeeded)
      return error_reply(http::status::conflict, "no_result", "the task did not succeed", req);
    reply r{string_response{http::status::ok, req.version()}, c->value};
    r.res.set(http::field::content_type, "application/octet-stream");
    r.res.keep_alive(req.keep_alive());
    return r;
  }

  asio::awaitable<reply> queues(const request& req) {
    std::function<void(std::function<void(std::vector<core::queue_stats>)>)> ask = [this](auto done) {
      n.queue_stats_async(std::move(done));
    };
    auto answer = co_await broker_answer<std::vector<core::queue_stats>>(post_to_io, std::move(ask), broker_answer_limit);
    if (!answer) co_return error_reply(http::status::service_unavailable, "shutting_down", "the node is stopping", req);
    json::array list;
    for (const auto& q : *answer) {
      list.push_back(json::object{{"name", q.name},          {"ready", q.ready},       {"delayed", q.delayed},
                                  {"leased", q.leased},      {"consumers", q.consumers}, {"demand", q.demand},
                                  {"submitted", q.submitted},
                                  {"succeeded", q.succeeded}, {"failed", q.failed},     {"dead", q.dead},
                                  {"cancelled", q.cancelled}, {"expired", q.expired},   {"retried", q.retried}});
    }
    co_return json_reply(http::status::ok, json::object{{"queues", std::move(list)}}, req);
  }

  /// Every runtime session, WebSocket, SSE and long-poll, for `GET /v1/runtimes`.
  json::array listed_runtimes() {
    auto out = parked_runtimes.describe();
    for (auto& r : polls.describe(std::chrono::steady_clock::now())) out.push_back(std::move(r));
    return out;
  }

  reply not_allowed(std::string_view allow, const request& req) {
    auto r = error_reply(http::status::method_not_allowed, "method_not_allowed",
                         "allowed: " + std::string(allow), req);
    r.res.set(http::field::allow, allow);
    return r;
  }

  /// Long-poll runtime endpoints: JSON in, JSON out.
  asio::awaitable<reply> runtime_poll(bool claim, const request& req, tcp::socket& peer) {
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec || !body.is_object()) co_return error_reply(http::status::bad_request, "bad_json", "the body must be a JSON object", req);
    unsigned status = 500;
    // Plain if/else: g++ 12 mis-destroys a co_await inside a conditional expression.
    json::object out;
    if (claim) {
      out = co_await polls.claim(body.as_object(), status, make_poster(), &peer);
    } else {
      out = polls.results(body.as_object(), status);
    }
    co_return json_reply(static_cast<http::status>(status), out, req);
  }

  asio::awaitable<void> write_reply(beast::tcp_stream& stream, reply r) {
    r.res.keep_alive(false);
    co_await http::async_write(stream, r.res, tuple);
  }

  static std::string sse_event(std::uint64_t id, std::string_view type, const json::object& data) {
    std::string out;
    if (id != 0) out += "id: " + std::to_string(id) + "\n";
    out += "event: ";
    out += type;
    out += "\ndata: ";
    out += json::serialize(data);
    out += "\n\n";
    return out;
  }

  /// `GET /v1/runtime/stream`: tasks pushed as server-sent events; demand
  /// and results come back as POSTs. The connection is the stream's.
  asio::awaitable<void> run_sse(beast::tcp_stream& stream, const request& req, const http_target& t) {
    std::vector<std::string> queues;
    if (const std::string* q = t.param("queues")) {
      for (std::size_t start = 0; start <= q->size();) {
        const auto comma = q->find(',', start);
        auto name = q->substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!name.empty()) queues.push_back(std::move(name));
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    std::optional<std::uint64_t> session;
    if (const std::string* text = t.param("session")) session = parse_number<std::uint64_t>(*text, 1, UINT64_MAX);
    const std::string* cap_text = t.param("capacity");
    auto capacity = cap_text ? parse_number<std::uint32_t>(*cap_text, 1, 65'535) : std::optional<std::uint32_t>{};
    if ((t.param("session") && !session) || (!session && !capacity)) {
      co_await write_reply(stream, error_reply(http::status::bad_request, "invalid_argument",
                                               "a stream needs capacity (1 to 65535) and queues, or a session to resume",
                                               req));
      co_return;
    }
    std::uint64_t last_seen_event = 0;
    if (auto it = req.find("Last-Event-ID"); it != req.end())
      last_seen_event = parse_number<std::uint64_t>(std::string(it->value()), 0, UINT64_MAX).value_or(0);
    unsigned status = 500;
    json::object refusal;
    const std::string* runtime = t.param("runtime");  // a name for operators, as in the WebSocket hello
    auto s = polls.open_stream(std::move(queues), capacity.value_or(0), session,
                               runtime ? net::runtime_name(*runtime) : std::string(), make_poster(), status, refusal);
    if (!s) {
      co_await write_reply(stream, json_reply(static_cast<http::status>(status), refusal, req));
      co_return;
    }
    const auto generation = ++s->stream_generation;
    struct detach {
      std::shared_ptr<poll_session> s;
      std::uint64_t generation;
      ~detach() {
        if (s->stream_generation != generation) return;  // a newer stream took over
        s->waiter = nullptr;
        s->streaming = false;
        s->last_seen = std::chrono::steady_clock::now();  // resumable until the idle timeout
      }
    } guard{s, generation};

    http::response<http::empty_body> head{http::status::ok, req.version()};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(false);  // the body lasts as long as the stream
    http::response_serializer<http::empty_body> serializer{head};
    stream.expires_never();
    if (auto [ec, n_head] = co_await http::async_write_header(stream, serializer, tuple); ec) co_return;

    std::string out = sse_event(0, "welcome", json::object{{"session", s->id},
                                                                   {"capacity", s->book.capacity()},
                                                                   {"requested", s->book.requested_after(last_seen_event)}});
    for (const auto& e : s->book.unanswered_after(last_seen_event))  // resume: what the runtime may not have seen
      out += sse_event(e.id, "task", describe_task(*e.task));
    // A runtime that goes away ends its stream now, not at the next keepalive:
    // its session starts its idle time (a resume may still take it back).
    asio::steady_timer* waiting = nullptr;
    hangup_watch watch(stream.socket(), [&] {
      if (waiting) waiting->cancel();
    });
    for (;;) {
      if (s->stream_generation != generation || watch.hung_up()) co_return;  // superseded, or the runtime left
      for (const auto& e : s->book.stream_ready()) out += sse_event(e.id, "task", describe_task(*e.task));
      for (const auto& c : s->book.take_cancels())
        out += sse_event(0, "cancel", json::object{{"task", c.task.value}, {"lease", c.lease.value}});
      if (!out.empty()) {
        if (auto [ec, n_out] = co_await asio::async_write(stream, asio::buffer(out), tuple); ec) co_return;
        out.clear();
        continue;  // tasks delivered while it wrote found no waiter to wake: look again first
      }
      asio::steady_timer timer(io, std::chrono::seconds(15));
      s->waiter = waiting = &timer;
      auto [ec] = co_await timer.async_wait(tuple);
      waiting = nullptr;
      if (s->stream_generation != generation || watch.hung_up()) co_return;
      s->waiter = nullptr;
      if (!ec && s->book.ready() == 0 && !s->book.has_cancels()) out = ": keepalive\n\n";  // also finds a silently dead peer
    }
  }

  /// `GET /v1/tasks/{id}/events`: the task's state (each change as the
  /// broker makes it), progress and log lines as server-sent events, then
  /// its outcome; the stream ends with the task. Any task the broker knows
  /// can be followed; one that ended only if it was submitted over HTTP
  /// (its outcome is retained).
  asio::awaitable<void> run_task_events(beast::tcp_stream& stream, const request& req, std::uint64_t id) {
    const auto h = retained.find(id);
    unfollow follow{n, id, std::make_shared<task_follower>(post_to_io)};
    auto& news = *follow.follower->news();
    if (!(h && h->done())) {
      n.watch(task_id{id}, follow.follower);
      follow.following = true;
      co_await wait_for_news(news, 0, std::chrono::seconds(5));  // the broker answers within a turn
      if (news.rejected && !h)
        if (auto o = kept.find(id)) news.state = o->state, news.outcome = std::move(*o);  // ended; a client's, kept
    }
    // What the stream can tell: a retained handle's outcome, or what the broker said.
    auto outcome = [&]() -> std::optional<json::object> {
      if (h && h->done()) return describe(*h);
      if (news.outcome) return describe_outcome(*news.outcome);
      return std::nullopt;
    };
    auto state = [&]() -> std::optional<task_state> {
      if (h && h->done()) return h->state();
      if (news.state) return news.state;
      if (h) return h->state();
      return std::nullopt;
    };
    if (!state()) {
      co_await write_reply(stream, error_reply(http::status::not_found, "unknown_task",
                                               "task " + std::to_string(id) + " is unknown, or ended and was not submitted over HTTP",
                                               req));
      co_return;
    }
    http::response<http::empty_body> head{http::status::ok, req.version()};
    head.set(http::field::content_type, "text/event-stream");
    head.set(http::field::cache_control, "no-cache");
    head.keep_alive(false);
    http::response_serializer<http::empty_body> serializer{head};
    stream.expires_never();
    if (auto [ec, n_head] = co_await http::async_write_header(stream, serializer, tuple); ec) co_return;

    struct wake_state {
      bool alive = true;
      asio::steady_timer* timer = nullptr;  // I/O thread only
      void wake() {
        if (alive && timer) timer->cancel();
      }
    };
    auto w = std::make_shared<wake_state>();
    const auto watch = notes.watch(id, [w] { w->wake(); });
    struct unwatch {
      task_notes& notes;
      std::uint64_t key;
      std::shared_ptr<wake_state> w;
      ~unwatch() {
        notes.unwatch(key);
        w->alive = false, w->timer = nullptr;
      }
    } guard{notes, watch, w};

    // A follower that goes away is let go now, not at the next keepalive.
    hangup_watch hangup(stream.socket(), [w] { w->wake(); });
    std::optional<task_state> sent_state;
    std::uint64_t sent_progress = 0, sent_lines = 0;
    for (;;) {
      if (hangup.hung_up()) co_return;
      const auto seen = news.version;
      std::string out;
      if (const auto now = state(); now && now != sent_state) {
        out += sse_event(0, "state", json::object{{"id", id}, {"state", core::to_string(*now)}});
        sent_state = now;
      }
      if (const auto* note = notes.find(id)) {
        if (note->progress_version != sent_progress && note->fraction) {
          out += sse_event(0, "progress", json::object{{"fraction", *note->fraction}, {"note", note->note}});
          sent_progress = note->progress_version;
        }
        const std::uint64_t first_kept = note->lines_total - note->lines.size();
        for (std::uint64_t i = std::max(sent_lines, first_kept); i < note->lines_total; ++i)
          out += sse_event(0, "log", json::object{{"line", note->lines[i - first_kept]}});
        sent_lines = note->lines_total;
      }
      const auto last = outcome();
      if (last) out += sse_event(0, "outcome", *last);
      if (out.empty()) out = ": keepalive\n\n";
      if (auto [ec, n_out] = co_await asio::async_write(stream, asio::buffer(out), tuple); ec || last) co_return;
      // Whatever came while writing is sent at once; else wait for news,
      // a note, or the keepalive.
      const auto* note = notes.find(id);
      const bool noted = note && (note->progress_version != sent_progress || note->lines_total != sent_lines);
      if (news.version != seen || noted || (h && h->done())) continue;
      asio::steady_timer timer(io, std::chrono::seconds(15));
      struct forget {
        task_news& news;
        wake_state& w;
        ~forget() { news.waiter = nullptr, w.timer = nullptr; }
      } clear{news, *w};
      news.waiter = &timer, w->timer = &timer;
      co_await timer.async_wait(tuple);
    }
  }

  /// Ends idle long-poll sessions; one timer for all of them.
  asio::awaitable<void> sweep_sessions() {
    const auto period = std::max(std::chrono::milliseconds(10), std::min(config.poll_session_idle / 2, std::chrono::milliseconds(1000)));
    asio::steady_timer timer(io);
    for (;;) {
      timer.expires_after(period);
      auto [ec] = co_await timer.async_wait(tuple);
      if (ec) co_return;
      polls.expire(std::chrono::steady_clock::now());
    }
  }

  asio::awaitable<reply> route(request& req, tcp::socket& peer) {
    if (!authorized(req)) co_return unauthorized_reply(req);
    auto target = parse_target(req.target());
    if (!target) co_return error_reply(http::status::bad_request, "bad_target", "malformed request target", req);
    const auto& s = target->segments;
    const auto method = req.method();
    if (s.size() == 4 && s[0] == "v1" && s[1] == "queues" && s[3] == "batch") {
      if (method != http::verb::post) co_return not_allowed("POST", req);
      co_return submit_batch(s[2], *target, req);
    }
    if (s.size() == 4 && s[0] == "v1" && s[1] == "queues" && s[3] == "tasks") {
      if (method != http::verb::post) co_return not_allowed("POST", req);
      co_return submit(s[2], *target, req);
    }
    if (s.size() == 3 && s[0] == "v1" && s[1] == "runtime" && (s[2] == "claim" || s[2] == "results")) {
      if (method != http::verb::post) co_return not_allowed("POST", req);
      co_return co_await runtime_poll(s[2] == "claim", req, peer);
    }
    if (s.size() == 3 && s[0] == "v1" && s[1] == "runtime" && (s[2] == "demand" || s[2] == "notes" || s[2] == "leave")) {
      if (method != http::verb::post) co_return not_allowed("POST", req);
      boost::system::error_code ec;
      json::value body = json::parse(req.body(), ec);
      if (ec || !body.is_object()) co_return error_reply(http::status::bad_request, "bad_json", "the body must be a JSON object", req);
      unsigned status = 500;
      json::object out = s[2] == "demand"  ? polls.demand(body.as_object(), status)
                         : s[2] == "notes" ? polls.notes(body.as_object(), status)
                                           : polls.leave(body.as_object(), status);
      co_return json_reply(static_cast<http::status>(status), out, req);
    }
    if (s.size() == 2 && s[0] == "v1" && s[1] == "runtimes") {
      if (method != http::verb::get) co_return not_allowed("GET", req);
      const auto& c = parked_runtimes.counts();
      co_return json_reply(http::status::ok,
                           json::object{{"runtimes", listed_runtimes()},
                                        {"sessions", json::object{{"parked", c.parked},
                                                                  {"resumed", c.resumed},
                                                                  {"expired", c.expired},
                                                                  {"refused_reports", c.refused_reports}}}},
                           req);
    }
    if (s.size() == 2 && s[0] == "v1" && s[1] == "queues") {
      if (method != http::verb::get) co_return not_allowed("GET", req);
      co_return co_await queues(req);
    }
    if ((s.size() == 3 || s.size() == 4) && s[0] == "v1" && s[1] == "tasks") {
      auto id = parse_number<std::uint64_t>(s[2], 1, UINT64_MAX);
      if (!id) co_return error_reply(http::status::bad_request, "invalid_argument", "task ids are positive integers", req);
      if (s.size() == 4) {
        if (s[3] != "result") co_return error_reply(http::status::not_found, "not_found", "no such resource", req);
        if (method != http::verb::get) co_return not_allowed("GET", req);
        co_return result(*id, req);
      }
      if (method == http::verb::get) co_return co_await status(*id, *target, req, peer);
      if (method == http::verb::delete_) {
        n.cancel(task_id{*id});
        co_return json_reply(http::status::accepted, json::object{{"id", *id}, {"cancel", "requested"}}, req);
      }
      co_return not_allowed("GET, DELETE", req);
    }
    co_return error_reply(http::status::not_found, "not_found", "no such resource", req);
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(config.body_bytes_max);
      parser.header_limit(static_cast<std::uint32_t>(config.header_bytes_max));
      stream.expires_after(config.idle_timeout);
      auto [ec, n_read] = co_await http::async_read(stream, buffer, parser, tuple);
      if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == asio::error::operation_aborted) break;
      if (ec) {
        // The offender learns why; the connection closes (its framing is lost).
        const bool too_big = ec == http::error::body_limit || ec == http::error::header_limit;
        request dummy{http::verb::unknown, "/", 11};
        dummy.keep_alive(false);
        auto r = error_reply(too_big ? http::status::payload_too_large : http::status::bad_request,
                             too_big ? "too_large" : "bad_request", ec.message(), dummy);
        co_await http::async_write(stream, r.res, tuple);
        break;
      }
      request req = parser.release();
      if (req.method() == http::verb::get) {
        auto target = parse_target(req.target());
        if (target && target->segments == std::vector<std::string>{"v1", "runtime", "stream"}) {
          if (!authorized(req)) {
            co_await write_reply(stream, unauthorized_reply(req));
          } else {
            co_await run_sse(stream, req, *target);
          }
          break;
        }
        const auto& seg = target ? target->segments : std::vector<std::string>{};
        if (seg.size() == 4 && seg[0] == "v1" && seg[1] == "tasks" && seg[3] == "events") {
          auto id = parse_number<std::uint64_t>(seg[2], 1, UINT64_MAX);
          if (!authorized(req)) {
            co_await write_reply(stream, unauthorized_reply(req));
          } else if (!id) {
            co_await write_reply(stream, error_reply(http::status::bad_request, "invalid_argument", "task ids are positive integers", req));
          } else {
            co_await run_task_events(stream, req, *id);
          }
          break;
        }
      }
      if (beast::websocket::is_upgrade(req)) {
        auto target = parse_target(req.target());
        if (target && target->segments == std::vector<std::string>{"v1", "client"}) {
          if (!authorized(req)) {
            co_await write_reply(stream, unauthorized_reply(req));
            break;
          }
          const auto* batch = target->param("batch");
          const auto* accepted = target->param("accepted");
          const auto* headers = target->param("headers");
          if ((batch && *batch != "true" && *batch != "false") || (accepted && *accepted != "true" && *accepted != "false")) {
            co_await write_reply(stream, error_reply(http::status::bad_request, "invalid_argument",
                                                     "batch and accepted are true or false", req));
            break;
          }
          const auto format = headers ? header_format_named(*headers) : header_format::json;
          if (!format) {
            co_await write_reply(stream, error_reply(http::status::bad_request, "invalid_argument",
                                                     "headers is json or compact", req));
            break;
          }
          // A named context, moved in: g++ 12 destroys a temporary in a
          // co_await expression twice (a copied shared_ptr released twice).
          client_session_context context{n, config, [this] { return make_poster(); }, batch && *batch == "true",
                                         accepted && *accepted == "true", &kept, post_to_io};
          context.headers = *format;
          // Spawned, and this frame (the HTTP parser, its buffer) ends here:
          // a long-lived connection keeps only what its session needs.
          asio::co_spawn(io, run_client_session(std::move(context), std::move(stream), std::move(req)), asio::detached);
          co_return;
        }
        if (target && target->segments == std::vector<std::string>{"v1", "runtime"}) {
          // The connection becomes a runtime's WebSocket, in a coroutine of
          // its own: this frame (the HTTP parser, its buffer) ends here
          // instead of living as long as the runtime stays connected
          // (5.4 KB of node memory per connection, docs/benchmarks.md).
          asio::co_spawn(io,
                         run_runtime_session(runtime_session_context{n, config, [this] { return make_poster(); }, parked_runtimes, notes},
                                             std::move(stream), std::move(req)),
                         asio::detached);
          co_return;
        }
      }
      reply r = co_await route(req, stream.socket());
      bool keep_alive = r.res.keep_alive();
      if (r.raw) {
        http::response<http::span_body<const char>> raw{r.res.result(), r.res.version()};
        raw.base() = r.res.base();
        raw.body() = std::span<const char>(reinterpret_cast<const char*>(r.raw->data()), r.raw->size());
        raw.prepare_payload();
        auto [wec, n_written] = co_await http::async_write(stream, raw, tuple);
        if (wec) break;
      } else {
        auto [wec, n_written] = co_await http::async_write(stream, r.res, tuple);
        if (wec) break;
      }
      if (!keep_alive) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  asio::awaitable<void> listen() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(tuple);
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;  // a failed accept (e.g. out of descriptors) must not stop the listener
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }
};

namespace {

/// The I/O thread's loop. When a turn handed the broker work whose answer
/// comes back here (io_spin.hpp), it keeps polling for `spin` before it
/// blocks: the answer (a dispatch, an outcome) then finds it awake, which
/// saves a wake-up of this thread (tens of microseconds on a VM). Anything
/// else (pings, timers) lets it block at once, so idle costs nothing.
/// While submits are rarer than `quiet_rate`, the spin is `io_quiet_spin`
/// (actors::spin_governor, here counting microseconds rather than polls).
///
/// `run_actors` runs the node's actors if they are due (a hosting gateway)
/// and tells whether it did: then the loop polls again rather than blocks,
/// since their answers (writes) were just posted here.
void run_io(asio::io_context& io, const gateway_config& config, const std::function<bool()>& run_actors) {
  using clock = std::chrono::steady_clock;
  const auto quiet = config.io_quiet_spin.count() > 0 ? config.io_quiet_spin : config.io_spin;
  actors::spin_governor governor(actors::spin_policy{static_cast<std::size_t>(quiet.count()),
                                                     static_cast<std::size_t>(config.io_spin.count()), config.quiet_rate});
  auto spin = config.io_spin;
  auto spin_until = clock::time_point::min();
  end_of_turn turn;
  end_of_turn::current = &turn;
  struct forget_turn {
    ~forget_turn() { end_of_turn::current = nullptr; }
  } forget;
  // The hosted actors' run if one is due and a share of the paced work
  // (end_of_turn::defer_paced), then the frames they queued.
  auto actors_then_writes = [&] {
    const bool ran = run_actors();
    if (!turn.run_paced(paced_per_run) && !ran) return false;
    turn.run();
    return true;
  };
  // Lazily deferred writes (clients' outcomes) leave once a turn finds
  // nothing to read, or once the oldest has waited busy_outcome_delay.
  constexpr auto none = clock::time_point::max();
  auto lazy_since = none;
  auto lazy_writes = [&](bool quiet) {
    if (!turn.has_lazy()) return;  // the clock is read only while writes wait
    const auto now = clock::now();
    if (lazy_since == none) lazy_since = now;
    if (!quiet && now - lazy_since < config.busy_outcome_delay) return;
    lazy_since = none;
    turn.run_lazy();
  };
  while (!io.stopped()) {
    // While quiet, the actors run as soon as a handler asked for them
    // instead of after the poll's last, empty, look at the sockets: a lone
    // submit's task frame leaves one system call sooner. Under load the
    // whole poll goes first, so that one actor run answers all its reads.
    std::size_t ran = 0;
    if (spin == quiet && quiet != config.io_spin) {
      while (io.poll_one() > 0) {
        ++ran;
        turn.run();
        if (actors_then_writes()) break;
      }
    } else {
      ran = io.poll();
    }
    turn.run();
    lazy_writes(ran == 0);
    if (actors_then_writes()) continue;
    auto now = clock::now();
    const bool spinning = spin.count() > 0 && now < spin_until;
    if (ran == 0 && !spinning) ran = io.run_one(), now = clock::now();
    turn.run();
    if (ran == 0) continue;
    const core::time_point at{std::chrono::duration_cast<core::duration>(now.time_since_epoch())};
    if (auto us = governor.on_submits(std::exchange(submits_seen, 0), at)) spin = std::chrono::microseconds(*us);
    if (std::exchange(broker_reply_expected, false)) spin_until = now + spin;
  }
}

}  // namespace

gateway::gateway(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
gateway::~gateway() { stop(); }

core::result<std::unique_ptr<gateway>> gateway::start(node& n, gateway_config config) {
  auto p = std::make_unique<impl>(n, std::move(config));
  beast::error_code ec;
  const auto address = asio::ip::make_address(p->config.address, ec);
  if (ec) return core::make_error(core::errc::invalid_argument, "bad listen address '" + p->config.address + "'");
  const tcp::endpoint endpoint{address, p->config.port};
  p->acceptor.open(endpoint.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(endpoint, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    return core::make_error(core::errc::invalid_argument,
                            "cannot listen on " + p->config.address + ":" + std::to_string(p->config.port) + ": " +
                                ec.message());
  asio::co_spawn(p->io, p->listen(), asio::detached);
  asio::co_spawn(p->io, p->sweep_sessions(), asio::detached);
  auto* raw = p.get();
  // A node built with hostable_actors runs its actors here from now on. A
  // wake-up only marks them due; the loop runs them once the ready I/O is
  // handled (run_io), so what a burst of reads asks of the broker is one
  // actor turn and its answers go out as one burst of writes.
  // Asked on the loop's own thread, the flag is set with no trip through its queue.
  p->hosting = n.host_actors([raw] { raw->post_to_io->run_here_or_post([raw] { raw->actors_due = true; }); });
  if (!p->hosting) p->config.io_quiet_spin = {};  // the broker's own thread spins instead (gateway.hpp)
  p->thread = std::thread([raw] {
    io_poster::current_loop = &static_cast<asio::execution_context&>(raw->io);
    run_io(raw->io, raw->config, [raw] {
      if (!std::exchange(raw->actors_due, false)) return false;
      raw->n.run_actors(actor_turns_per_run);
      return true;
    });
  });
  return std::unique_ptr<gateway>(new gateway(std::move(p)));
}

std::uint16_t gateway::port() const { return impl_->acceptor.local_endpoint().port(); }

void gateway::stop() {
  if (!impl_ || impl_->stopped.exchange(true)) return;
  if (impl_->hosting) impl_->n.unhost_actors();  // before the loop stops: the node's thread takes them back
  impl_->close_posters();
  asio::post(impl_->io, [p = impl_.get()] {
    beast::error_code ignored;
    p->acceptor.close(ignored);
  });
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace drover::net
