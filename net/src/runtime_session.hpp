#pragma once
// One remote runtime over WebSocket (`/v1/runtime`): the hello/welcome
// handshake, demand, tasks as binary frames, results and failures back,
// progress and logs, cancellations, heartbeats, precise errors, and resume:
// a resumable runtime whose connection drops keeps its session (and
// leases) for the lease TTL, and takes it back by reconnecting with its
// session id. docs/protocol.md is the reference; this file implements it.
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "drover/net/gateway.hpp"

namespace drover::net {

/// Posts work to the gateway's I/O thread until closed (then drops it), so
/// callbacks from CAF threads never reach a stopped gateway.
class io_poster;
class task_notes;
struct parked_session;
struct session_state;

/// What became of runtime sessions since the gateway started (`GET
/// /v1/runtimes`): how often a dropped connection was resumed, or its lease
/// TTL ran out, and how many reports for leases a runtime no longer held
/// were refused.
struct runtime_session_counts {
  std::uint64_t parked = 0;           // dropped connections whose session waited for its runtime
  std::uint64_t resumed = 0;          // ... and was taken back in time
  std::uint64_t expired = 0;          // ... or ended with the lease TTL (its leases released)
  std::uint64_t refused_reports = 0;  // results and failures for leases not held (stale)
};

/// Sessions of runtimes whose connection dropped, kept for the lease TTL.
/// I/O thread only; destroyed before the I/O context.
class runtime_registry {
 public:
  runtime_registry();
  ~runtime_registry();
  void park(std::unique_ptr<parked_session> s);
  /// Takes a parked session back (its expiry cancelled); null if unknown or expired.
  std::unique_ptr<parked_session> take(std::uint64_t session);
  std::size_t size() const { return parked_.size(); }
  /// Every live session, connected or parked (for `GET /v1/runtimes`).
  void track(const std::shared_ptr<session_state>& s);
  boost::json::array describe();
  runtime_session_counts& counts() { return counts_; }

 private:
  runtime_session_counts counts_;
  std::unordered_map<std::uint64_t, std::unique_ptr<parked_session>> parked_;
  std::vector<std::weak_ptr<session_state>> live_;
  std::size_t sweep_at_ = 64;
};

struct runtime_session_context {
  node& n;
  const gateway_config& config;
  /// Registers a poster the gateway closes before it stops.
  std::function<std::shared_ptr<io_poster>()> make_poster;
  runtime_registry& registry;
  task_notes& notes;
};

boost::asio::awaitable<void> run_runtime_session(runtime_session_context ctx, boost::beast::tcp_stream stream,
                                                 boost::beast::http::request<boost::beast::http::string_body> upgrade);

}  // namespace drover::net
