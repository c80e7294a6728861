#include "poll_sessions.hpp"

#include "hangup_watch.hpp"
#include "json_fields.hpp"
#include "runtime_name.hpp"
#include "runtime_note.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/detail/base64.hpp>

namespace drover::net {

namespace asio = boost::asio;
namespace json = boost::json;
namespace base64 = boost::beast::detail::base64;

namespace {

constexpr std::uint64_t claim_max = 1000;

json::object error(unsigned& status, unsigned code, std::string_view name, std::string_view message) {
  status = code;
  return json::object{{"error", name}, {"message", message}};
}

/// Ends a session on the node's side: nothing more is posted to it, and the
/// broker releases its leases.
void end_session(poll_session& s) {
  s.poster->close();
  s.link->close();
}

/// A long-poll runtime hears of revoked leases in its next answer.
json::array take_cancels(poll_session& s) {
  json::array out;
  for (const auto& c : s.book.take_cancels()) out.push_back(json::object{{"task", c.task.value}, {"lease", c.lease.value}});
  return out;
}

/// The session's sink: the broker's deliveries land in the session's queue on
/// the I/O thread; a waiting claim is woken.
class poll_sink final : public actors::remote_sink {
 public:
  explicit poll_sink(std::weak_ptr<poll_session> s, std::shared_ptr<io_poster> p) : s_(std::move(s)), p_(std::move(p)) {}
  void joined(core::consumer_id) override {}
  void deliver(std::vector<actors::remote_task> tasks) override {
    p_->post([w = s_, tasks = std::move(tasks)]() mutable {
      auto s = w.lock();
      if (!s) return;
      s->book.delivered(std::move(tasks));
      if (s->waiter) s->waiter->cancel();
    });
  }
  void revoke(std::vector<core::cancel_notice> notices) override {
    p_->post([w = s_, notices = std::move(notices)] {
      auto s = w.lock();
      if (!s) return;
      for (const auto& n : notices) s->book.revoked(n.lease);
      // A waiting claim answers with the cancels; a stream writes them.
      if (s->book.has_cancels() && s->waiter) s->waiter->cancel();
    });
  }
  void refused(core::task_id task, core::lease_id lease, core::error why) override {
    p_->post([w = s_, task, lease, why = std::move(why)] {
      if (auto s = w.lock())
        s->errors.push_back(json::object{{"code", core::to_string(why.code)}, {"message", why.message},
                                         {"task", task.value}, {"lease", lease.value}});
    });
  }
  void failed(core::error why) override {
    p_->post([w = s_, why = std::move(why)] {
      if (auto s = w.lock()) {
        s->failed = true;
        s->errors.push_back(json::object{{"code", core::to_string(why.code)}, {"message", why.message}});
        if (s->waiter) s->waiter->cancel();
      }
    });
  }

 private:
  std::weak_ptr<poll_session> s_;
  std::shared_ptr<io_poster> p_;
};

}  // namespace

asio::awaitable<json::object> poll_sessions::claim(const json::object& body, unsigned& status,
                                                   std::shared_ptr<io_poster> poster, asio::ip::tcp::socket* peer) {
  const auto max = uint_field(body, "max").value_or(1);
  const auto wait_ms = uint_field(body, "wait_ms").value_or(0);
  if (max < 1 || max > claim_max) co_return error(status, 400, "invalid_argument", "max must be 1 to 1000");
  if (wait_ms > static_cast<std::uint64_t>(config_.wait_max.count()))
    co_return error(status, 400, "invalid_argument", "wait_ms is above the gateway's wait_max");

  std::shared_ptr<poll_session> s;
  if (auto id = uint_field(body, "session")) {
    auto it = sessions_.find(*id);
    if (it == sessions_.end())
      co_return error(status, 404, "unknown_session", "session " + std::to_string(*id) + " is unknown or expired");
    s = it->second;
  } else {
    auto queues = body.if_contains("queues");
    if (!queues || !queues->is_array() || queues->as_array().empty())
      co_return error(status, 400, "invalid_argument", "a new session needs a non-empty 'queues' array");
    std::vector<std::string> names;
    for (const auto& q : queues->as_array()) {
      if (!q.is_string() || q.as_string().empty())
        co_return error(status, 400, "invalid_argument", "queue names must be non-empty strings");
      names.emplace_back(q.as_string());
    }
    s = std::make_shared<poll_session>();
    s->id = ++last_id_;
    if (auto name = body.if_contains("runtime"); name && name->is_string()) s->name = runtime_name(name->as_string());
    s->queues = names;
    s->poster = std::move(poster);
    s->link = n_.attach_remote(std::move(names), std::make_shared<poll_sink>(s, s->poster));
    sessions_.emplace(s->id, s);
  }
  s->last_seen = std::chrono::steady_clock::now();
  if (const auto n = s->book.claim(max)) s->link->demand(n);
  bool hung_up = false;
  if (s->book.ready() == 0 && !s->book.has_cancels() && wait_ms > 0 && !s->failed) {
    // Wait without spinning: a timer the sink cancels when tasks arrive.
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::milliseconds(wait_ms));
    s->waiter = &timer;
    std::optional<hangup_watch> watch;
    if (peer) watch.emplace(*peer, [&] { timer.cancel(); });
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (s->left)  // its leases are released: nothing in the book is the runtime's any more
      co_return error(status, 404, "unknown_session", "session " + std::to_string(s->id) + " left");
    if (s->waiter == &timer) s->waiter = nullptr;  // else a newer claim of the session waits there
    s->last_seen = std::chrono::steady_clock::now();
    hung_up = watch && watch->hung_up();
  }
  // Nobody to answer: what arrived stays for the runtime's next claim. The
  // watch tells of a hang-up during the wait; a look at the socket, of one
  // that came with the request or just before the answer (the watch may not
  // have run yet), so that no claimed task goes to a closed connection.
  if (hung_up || (peer && peer_gone(peer->native_handle())))
    co_return error(status, 499, "hung_up", "the runtime closed the connection");
  json::array tasks;
  for (const auto& t : s->book.take(max)) tasks.push_back(describe_task(t));
  json::array errors(s->errors.begin(), s->errors.end());
  s->errors.clear();
  status = 200;
  co_return json::object{
      {"session", s->id}, {"tasks", std::move(tasks)}, {"cancels", take_cancels(*s)}, {"errors", std::move(errors)}};
}

poll_sessions::listed_request poll_sessions::listed(const json::object& body, const char* list, unsigned& status,
                                                    json::object& refusal) {
  auto id = uint_field(body, "session");
  if (!id) {
    refusal = error(status, 400, "invalid_argument", std::string(list) + " need a 'session'");
    return {};
  }
  auto it = sessions_.find(*id);
  if (it == sessions_.end()) {
    refusal = error(status, 404, "unknown_session", "session " + std::to_string(*id) + " is unknown or expired");
    return {};
  }
  it->second->last_seen = std::chrono::steady_clock::now();
  auto items = body.if_contains(list);
  if (!items || !items->is_array()) {
    refusal = error(status, 400, "invalid_argument", "'" + std::string(list) + "' must be an array");
    return {};
  }
  return {it->second.get(), &items->as_array()};
}

json::object poll_sessions::results(const json::object& body, unsigned& status) {
  json::object refusal;
  const auto request = listed(body, "results", status, refusal);
  if (!request.session) return refusal;
  auto& s = *request.session;
  std::vector<actors::remote_report> reports;
  for (const auto& v : *request.list) {
    if (!v.is_object()) return error(status, 400, "invalid_argument", "each result must be an object");
    const auto& r = v.as_object();
    auto task = uint_field(r, "task"), lease = uint_field(r, "lease");
    if (!task || !lease) return error(status, 400, "invalid_argument", "each result needs task and lease");
    const auto slot = static_cast<std::uint32_t>(uint_field(r, "slot").value_or(UINT32_MAX));
    auto ok = r.if_contains("ok");
    if (!ok || !ok->is_bool()) return error(status, 400, "invalid_argument", "each result needs a boolean 'ok'");
    if (ok->as_bool()) {
      std::string value;
      if (auto b = r.if_contains("value_base64")) {
        auto decoded = b->is_string() ? from_base64(b->as_string()) : std::nullopt;
        if (!decoded) return error(status, 400, "invalid_argument", "value_base64 is not valid base64");
        value = std::move(*decoded);
      }
      reports.push_back({core::task_id{*task}, core::lease_id{*lease},
                         core::attempt_result::success(core::bytes::adopt(std::move(value))), slot});
    } else {
      auto message = r.if_contains("message");
      auto retryable = r.if_contains("retryable");
      reports.push_back({core::task_id{*task}, core::lease_id{*lease},
                         core::attempt_result::failure(
                             message && message->is_string() ? std::string(message->as_string()) : "runtime reported failure",
                             !(retryable && retryable->is_bool() && !retryable->as_bool())),
                         slot});
    }
  }
  // Only a list found whole changes the books: a refused one leaves the
  // session holding every lease it named, for the runtime to post again.
  for (const auto& r : reports) s.book.reported(r.lease);
  const auto forwarded = reports.size();
  s.link->report(std::move(reports));
  json::array errors(s.errors.begin(), s.errors.end());
  s.errors.clear();
  status = 202;
  json::object answer{{"forwarded", forwarded}, {"errors", std::move(errors)}};
  if (!s.book.stream()) answer["cancels"] = take_cancels(s);  // a stream carries its own
  return answer;
}

json::object poll_sessions::notes(const json::object& body, unsigned& status) {
  json::object refusal;
  const auto request = listed(body, "notes", status, refusal);
  if (!request.session) return refusal;
  auto& s = *request.session;
  // Each note stands alone: a refused one is listed, the others are filed.
  std::size_t accepted = 0, index = 0;
  json::array errors;
  for (const auto& v : *request.list) {
    const auto at = index++;
    auto refuse = [&](std::string_view code, std::string_view message) {
      errors.push_back(json::object{{"index", at}, {"code", code}, {"message", message}});
    };
    if (!v.is_object()) {
      refuse("invalid_argument", "each note is an object");
      continue;
    }
    const auto& o = v.as_object();
    auto type = o.if_contains("type");
    if (!type || !type->is_string() || (type->as_string() != "progress" && type->as_string() != "log")) {
      refuse("unknown_type", "a note's type is progress or log");
      continue;
    }
    auto read = read_runtime_note(type->as_string(), o);
    if (!read.note) {
      refuse(read.code, read.message);
      continue;
    }
    auto task = uint_field(o, "task"), lease = uint_field(o, "lease");
    if (!task || !lease) {
      refuse("invalid_argument", "a note needs task and lease");
      continue;
    }
    if (!s.book.holds(core::task_id{*task}, core::lease_id{*lease})) {
      refuse("stale_lease", "this session does not hold that lease");
      continue;
    }
    file_runtime_note(notes_, *task, std::move(*read.note));
    ++accepted;
  }
  status = 202;
  return json::object{{"accepted", accepted}, {"errors", std::move(errors)}};
}

std::shared_ptr<poll_session> poll_sessions::open_stream(std::vector<std::string> queues, std::uint32_t capacity,
                                                        std::optional<std::uint64_t> session, std::string name,
                                                        std::shared_ptr<io_poster> poster, unsigned& status,
                                                        json::object& err) {
  if (session) {
    auto it = sessions_.find(*session);
    if (it == sessions_.end() || !it->second->book.stream()) {
      err = error(status, 404, "unknown_session", "stream session " + std::to_string(*session) + " is unknown or expired");
      return nullptr;
    }
    // A reconnecting runtime takes over: its old connection may be half-dead
    // (nothing tells a server a peer vanished until it writes).
    auto& s = *it->second;
    ++s.stream_generation;
    if (s.waiter) s.waiter->cancel();
    s.waiter = nullptr;  // the old stream's timer dies with its coroutine
    s.streaming = true;
    return it->second;
  }
  if (queues.empty()) {
    err = error(status, 400, "invalid_argument", "queues must name at least one queue");
    return nullptr;
  }
  auto s = std::make_shared<poll_session>();
  s->id = ++last_id_;
  s->book = actors::poll_session_book(capacity);
  s->name = std::move(name);
  s->queues = queues;
  s->streaming = true;
  s->poster = std::move(poster);
  s->last_seen = std::chrono::steady_clock::now();
  s->link = n_.attach_remote(std::move(queues), std::make_shared<poll_sink>(s, s->poster));
  s->link->demand(s->book.open());  // a stream starts with its declared capacity as demand
  sessions_.emplace(s->id, s);
  return s;
}

json::object poll_sessions::demand(const json::object& body, unsigned& status) {
  auto id = uint_field(body, "session");
  auto n = uint_field(body, "n");
  if (!id || !n || *n == 0 || *n > 65'535)
    return error(status, 400, "invalid_argument", "demand needs a session and n from 1 to 65535");
  auto it = sessions_.find(*id);
  if (it == sessions_.end() || !it->second->book.stream())
    return error(status, 404, "unknown_session", "stream session " + std::to_string(*id) + " is unknown or expired");
  auto& s = *it->second;
  s.last_seen = std::chrono::steady_clock::now();
  if (!s.book.demand(static_cast<std::uint32_t>(*n)))
    return error(status, 400, "over_capacity", "demand beyond the capacity the stream declared");
  s.link->demand(static_cast<std::uint32_t>(*n));
  status = 202;
  return json::object{{"session", s.id}, {"demand", *n}};
}

json::object poll_sessions::leave(const json::object& body, unsigned& status) {
  auto id = uint_field(body, "session");
  if (!id) return error(status, 400, "invalid_argument", "leave needs a 'session'");
  auto it = sessions_.find(*id);
  if (it == sessions_.end())
    return error(status, 404, "unknown_session", "session " + std::to_string(*id) + " is unknown or expired");
  auto& s = *it->second;
  s.left = true;
  ++s.stream_generation;  // an attached stream ends, as when a resumed one takes over
  if (s.waiter) s.waiter->cancel();
  s.waiter = nullptr;
  end_session(s);
  sessions_.erase(it);
  status = 202;
  return json::object{{"session", *id}, {"left", true}};
}

void poll_sessions::expire(std::chrono::steady_clock::time_point now) {
  std::erase_if(sessions_, [&](auto& entry) {
    auto& s = *entry.second;
    if (s.waiter || s.streaming || now - s.last_seen < config_.poll_session_idle) return false;
    end_session(s);
    return true;
  });
}

json::array poll_sessions::describe(std::chrono::steady_clock::time_point now) const {
  json::array out;
  for (const auto& [id, s] : sessions_) {
    json::array queues;
    for (const auto& q : s->queues) queues.emplace_back(q);
    const bool stream = s->book.stream();
    // A stream attached or a claim waiting: the session is not idle (expire skips it).
    const bool connected = stream ? s->streaming : s->waiter != nullptr;
    const auto idle =
        connected ? 0 : std::chrono::duration_cast<std::chrono::milliseconds>(now - s->last_seen).count();
    out.push_back(json::object{
        {"session", id},
        {"transport", stream ? "sse" : "long-poll"},
        {"name", s->name},
        {"queues", std::move(queues)},
        {"capacity", stream ? json::value(s->book.capacity()) : json::value(nullptr)},
        {"demand", s->book.outstanding()},
        {"in_flight", s->book.held()},
        {"waiting", s->book.ready()},
        {"connected", connected},
        {"idle_ms", std::max<std::int64_t>(0, idle)}});
  }
  return out;
}

void poll_sessions::close_all() {
  for (auto& [id, s] : sessions_) end_session(*s);
  sessions_.clear();
}

}  // namespace drover::net
