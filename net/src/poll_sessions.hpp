#pragma once
// Long-poll runtimes, for proxies that forbid streaming: a runtime claims
// tasks with `POST /v1/runtime/claim` (waiting up to wait_ms without
// spinning) and reports with `POST /v1/runtime/results`. Each runtime is a
// session (a broker consumer through node::attach_remote) that lives across
// requests and ends when idle for longer than its idle timeout, releasing
// its leases, or when the runtime leaves. Everything here runs on the
// gateway's I/O thread.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "drover/actors/poll_session_book.hpp"
#include "drover/net/gateway.hpp"
#include "io_poster.hpp"
#include "task_notes.hpp"

namespace drover::net {

struct poll_session {
  std::uint64_t id = 0;
  std::string name;                 // the runtime's, for operators (optional)
  std::vector<std::string> queues;  // what it serves, for `GET /v1/runtimes`
  std::unique_ptr<actors::remote_link> link;
  actors::poll_session_book book;  // demand, ready tasks and (SSE) unanswered events
  std::vector<boost::json::object> errors;  // refusals to report with the next answer
  std::chrono::steady_clock::time_point last_seen;
  boost::asio::steady_timer* waiter = nullptr;  // a claim waiting for tasks
  bool failed = false;
  bool left = false;  // the runtime ended the session (`POST /v1/runtime/leave`)
  std::shared_ptr<io_poster> poster;
  // SSE mode: a stream is attached (the book keeps its unanswered events,
  // re-sent to a stream that resumes with Last-Event-ID).
  bool streaming = false;
  std::uint64_t stream_generation = 0;  // a resumed stream takes over from an older one
};

class poll_sessions {
 public:
  poll_sessions(node& n, const gateway_config& config, task_notes& notes) : n_(n), config_(config), notes_(notes) {}

  /// Answers a claim: {"session":..,"tasks":[..],"errors":[..]}; status in `status`.
  /// A claim that waits watches `peer` and stops waiting if the runtime hangs
  /// up (its tasks stay in the session, which then starts its idle time); a
  /// claim whose `peer` is gone when its answer is due takes no tasks (499).
  boost::asio::awaitable<boost::json::object> claim(const boost::json::object& body, unsigned& status,
                                                    std::shared_ptr<io_poster> poster,
                                                    boost::asio::ip::tcp::socket* peer = nullptr);
  boost::json::object results(const boost::json::object& body, unsigned& status);
  /// `POST /v1/runtime/notes`: progress and log lines for tasks the session holds.
  boost::json::object notes(const boost::json::object& body, unsigned& status);
  /// SSE: opens a session (or resumes `session`) for a stream; null with
  /// `status`/`error` set when refused.
  std::shared_ptr<poll_session> open_stream(std::vector<std::string> queues, std::uint32_t capacity,
                                            std::optional<std::uint64_t> session, std::string name,
                                            std::shared_ptr<io_poster> poster, unsigned& status,
                                            boost::json::object& error);
  /// SSE: `POST /v1/runtime/demand {"session":..,"n":..}`.
  boost::json::object demand(const boost::json::object& body, unsigned& status);
  /// `POST /v1/runtime/leave {"session":..}`: the runtime ends its session
  /// (long-poll or SSE) now rather than by the idle timeout; its leases are
  /// released at once, a claim it has waiting is answered 404, its stream ends.
  boost::json::object leave(const boost::json::object& body, unsigned& status);
  /// Ends sessions idle for longer than the idle timeout (their leases are released).
  void expire(std::chrono::steady_clock::time_point now);
  /// The sessions for `GET /v1/runtimes`, beside the WebSocket runtimes:
  /// transport, name, queues, capacity (SSE), demand, the leases the
  /// runtime holds (`in_flight`) and those waiting for its next claim or
  /// stream write (`waiting`).
  boost::json::array describe(std::chrono::steady_clock::time_point now) const;
  void close_all();
  std::size_t size() const { return sessions_.size(); }

 private:
  /// A request naming its session and carrying an array `list` (results,
  /// notes): the session (heard from now) and the array, or a null session
  /// with the refusal (400 without a session or array, 404 for an unknown
  /// session).
  struct listed_request {
    poll_session* session = nullptr;
    const boost::json::array* list = nullptr;
  };
  listed_request listed(const boost::json::object& body, const char* list, unsigned& status,
                        boost::json::object& refusal);

  node& n_;
  const gateway_config& config_;
  task_notes& notes_;
  std::unordered_map<std::uint64_t, std::shared_ptr<poll_session>> sessions_;
  std::uint64_t last_id_ = 0;
};

}  // namespace drover::net
