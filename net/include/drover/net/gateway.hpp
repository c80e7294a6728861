#pragma once
// The HTTP gateway of a node (Boost.Beast): clients submit tasks, read their
// status and results, cancel them and list queues. Beast stays inside
// gateway.cpp; this header is all a caller sees. Protocol: docs/protocol.md.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drover/core/result.hpp"
#include "drover/node.hpp"

namespace drover::net {

struct gateway_config {
  std::string address = "127.0.0.1";
  std::uint16_t port = 7700;  // 0 = an ephemeral port (tests)
  /// Request bodies (payloads) above this get 413.
  std::size_t body_bytes_max = std::size_t{64} << 20;
  std::size_t header_bytes_max = 16 * 1024;
  /// Bearer tokens accepted; empty = no authentication.
  std::vector<std::string> tokens;
  /// A client that sends nothing for this long is disconnected.
  std::chrono::milliseconds idle_timeout{30'000};
  /// Outcomes of this many most recent HTTP-submitted tasks stay readable.
  std::size_t results_retained = 100'000;
  /// Upper bound of a long-poll (`?wait_ms=`, a claim's `wait_ms`).
  std::chrono::milliseconds wait_max{60'000};
  /// A long-poll runtime session with no request for this long ends, and
  /// its leases are released.
  std::chrono::milliseconds poll_session_idle{30'000};
  /// WebSocket runtimes: a ping after this much silence; no answer within
  /// as long again and the runtime is taken for dead.
  std::chrono::milliseconds heartbeat_interval{5'000};
  /// A resumable runtime whose connection dropped keeps its session and
  /// leases this long, waiting for it to reconnect (0 = released at once).
  std::chrono::milliseconds runtime_lease_ttl{10'000};
  /// Tasks whose progress and log lines are kept for clients to read.
  std::size_t notes_retained = 10'000;
  /// After handling work the I/O thread polls this long before it sleeps:
  /// replies from the broker then find it awake (latency for CPU; 0 = off).
  std::chrono::microseconds io_spin{20};
  /// While fewer than `quiet_rate` tasks per second are submitted here
  /// (measured over 50 ms), the I/O thread spins this long instead: through
  /// the gaps between tasks, so the next one finds it awake (a wake-up costs
  /// tens of microseconds on a VM; the spin costs up to a core while tasks
  /// are few). Applies only while this thread hosts the node's actors
  /// (node_config::hostable_actors): otherwise the broker's scheduler thread
  /// has its own quiet spin. 0 = off.
  std::chrono::microseconds io_quiet_spin{0};
  double quiet_rate = 2'500;
  /// While the I/O thread finds more to read every turn, a client's
  /// outcomes wait up to this long to leave together: fewer, bigger sends
  /// to a busy client (each send wakes it). When a turn finds nothing to
  /// read they leave at once, so a quiet node adds no delay. 0 = at the end
  /// of every turn.
  std::chrono::microseconds busy_outcome_delay{500};
};

class gateway {
 public:
  /// Binds and starts serving on its own I/O thread.
  static core::result<std::unique_ptr<gateway>> start(node& n, gateway_config config);
  ~gateway();
  gateway(const gateway&) = delete;
  gateway& operator=(const gateway&) = delete;

  std::uint16_t port() const;
  /// Stops accepting, closes connections, joins the I/O thread.
  void stop();

  struct impl;

 private:
  explicit gateway(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace drover::net
