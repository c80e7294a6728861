#pragma once
// The C++ runtime client: a program links this to become a remote runtime
// of a drover node over WebSocket (`/v1/runtime`, docs/protocol.md). It
// connects, declares its queues and capacity, runs coroutine handlers (or
// immediate ones, which need no coroutine) under its own work limit (the
// capacity), reports results, failures,
// progress and log lines, answers heartbeats, and reconnects with backoff,
// resuming its session so that tasks it is running keep their leases.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "drover/core/broker_core.hpp"
#include "drover/core/result.hpp"
#include "drover/net/runtime_io.hpp"

namespace drover::net {

namespace detail {
struct runtime_connection;
}

struct runtime_client_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 7700;
  std::string token;  // sent in hello when the node requires one
  std::string name = "runtime";
  std::vector<std::string> queues;
  /// Most handlers running at once: the runtime's own work limit, and the
  /// capacity it declares (demand never exceeds it).
  std::uint32_t capacity = 16;
  /// Reconnect delays: doubling from the first up to the cap, with jitter.
  std::chrono::milliseconds reconnect_first{50};
  std::chrono::milliseconds reconnect_max{5'000};
  /// Demand is asked for once at least this many handler slots are free
  /// and not yet asked for (or when none is outstanding or running at all):
  /// under load, tasks then come in fewer, larger messages. 0 = a quarter
  /// of the capacity, at least 1.
  std::uint32_t demand_step = 0;
  /// Ask the node to keep this runtime's leases across a dropped connection.
  bool resumable = true;
  /// Let the node send several tasks per message, and send several results
  /// per message (fewer messages per task under load; protocol.md, batch).
  bool batch = true;
  /// Ask for compact record headers (protocol.md, Compact headers): tasks
  /// and results cost less to write and read than with JSON headers.
  bool compact_headers = true;
  /// Frames above this (a task with a huge payload) end the connection.
  std::size_t frame_bytes_max = (std::size_t{64} << 20) + 65'536;
  /// Seed of the reconnect jitter; 0 = drawn from the OS.
  std::uint64_t seed = 0;
};

class runtime_client;

/// One leased task, as a handler sees it.
class runtime_task {
 public:
  core::task_id id() const { return id_; }
  std::uint64_t lease() const { return lease_; }
  std::uint16_t attempt() const { return attempt_; }
  const std::string& queue() const { return queue_; }
  const core::bytes& payload() const { return payload_; }
  std::string_view payload_view() const { return payload_.view(); }
  /// Value of a meta key, or empty.
  std::string_view meta(std::string_view key) const;
  /// When the lease ends (a result after it is refused).
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }
  /// True once the node took the lease back (cancelled, expired) or the
  /// session was lost; the handler's next co_await of an asio operation
  /// also ends with operation_aborted.
  bool cancelled() const { return cancelled_; }

  // Overloads, not default arguments (g++ 12 and coroutines: docs/stack-notes.md).
  void progress(double fraction) { progress(fraction, {}); }
  void progress(double fraction, std::string_view note);
  void log(std::string_view line);

 private:
  friend struct detail::runtime_connection;
  struct access;
  detail::runtime_connection* owner_ = nullptr;  // kept alive by the handler's coroutine
  core::task_id id_;
  std::uint64_t lease_ = 0;
  std::uint32_t slot_ = 0;
  std::uint16_t attempt_ = 0;
  std::string queue_;
  core::bytes payload_;
  std::vector<std::pair<std::string, std::string>> meta_;
  std::chrono::steady_clock::time_point deadline_;
  bool cancelled_ = false;
};

using runtime_handler = std::function<boost::asio::awaitable<core::attempt_result>(runtime_task&)>;
/// A handler with nothing to wait for: called on the I/O thread as its task
/// arrives and returning the outcome, with no coroutine started for it (a
/// coroutine handler costs a `co_spawn` per task, a third of a no-op
/// runtime's CPU: docs/benchmarks.md). Reads, heartbeats and every other
/// handler wait while it runs, so keep it short; anything that waits (I/O,
/// a child process, a timer) belongs in a coroutine handler.
using runtime_immediate_handler = std::function<core::attempt_result(runtime_task&)>;

struct runtime_client_stats {
  bool connected = false;
  std::uint64_t session = 0;
  std::uint64_t connects = 0;  // successful handshakes
  std::uint64_t resumed = 0;   // of which took an earlier session back
  std::uint64_t received = 0;  // tasks
  std::uint64_t succeeded = 0, failed = 0, cancelled = 0;
  std::uint32_t running = 0;
  std::string last_error;  // the node's last refusal, if any
};

class runtime_client {
 public:
  /// Starts connecting on its own I/O thread (handlers run there too).
  /// Throws std::invalid_argument for an unusable configuration.
  static std::unique_ptr<runtime_client> start(runtime_client_config config, runtime_handler handler);
  /// The same on a thread shared with other clients (runtime_io.hpp).
  static std::unique_ptr<runtime_client> start(runtime_client_config config, runtime_handler handler,
                                               std::shared_ptr<runtime_io> io);
  /// The same with a handler that finishes without waiting.
  static std::unique_ptr<runtime_client> start(runtime_client_config config, runtime_immediate_handler handler);
  static std::unique_ptr<runtime_client> start(runtime_client_config config, runtime_immediate_handler handler,
                                               std::shared_ptr<runtime_io> io);
  ~runtime_client();
  runtime_client(const runtime_client&) = delete;
  runtime_client& operator=(const runtime_client&) = delete;

  /// Waits until the node welcomed this runtime; false on timeout.
  bool wait_connected(std::chrono::milliseconds timeout) const;
  runtime_client_stats stats() const;
  /// Stops asking for tasks, lets running handlers finish within `grace`
  /// (then cancels them), closes the connection cleanly, and lets go of
  /// the I/O thread (joined here if no other client shares it). stats()
  /// still answers afterwards.
  void stop(std::chrono::milliseconds grace);
  void stop() { stop(std::chrono::seconds(5)); }


 private:
  runtime_client(std::shared_ptr<detail::runtime_connection> c, std::shared_ptr<runtime_io> io);
  static std::unique_ptr<runtime_client> start_connection(runtime_client_config config, runtime_handler handler,
                                                          runtime_immediate_handler immediate,
                                                          std::shared_ptr<runtime_io> io);
  // Coroutines on the I/O thread hold the connection too: it lives until
  // the last of them ends, or the I/O thread is gone.
  std::shared_ptr<detail::runtime_connection> impl_;
  std::shared_ptr<runtime_io> io_;
};

}  // namespace drover::net
