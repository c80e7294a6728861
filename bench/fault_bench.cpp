// `drover bench remote --workload faults`: tasks submitted while runtime
// processes are killed (SIGKILL) and frozen (SIGSTOP, then SIGCONT), at
// random moments from a seeded generator. A killed runtime is replaced by a
// new process (a new session: its leases wait out the lease TTL, then go to
// another runtime). A frozen one goes silent: past twice the heartbeat the
// node drops its connection; thawed within the lease TTL it resumes its
// session and keeps its leases, later it finds its session gone and drops
// what it was running (other runtimes have those tasks by then). With a
// short attempt timeout, leases also end under a frozen runtime that is
// still connected, and the results it sends on waking are refused. With
// --client-drops the producer's own connection is cut as well, and it gets
// its outcomes back as protocol.md tells a client to (follow, or submit
// again under the same idempotency key). Every accepted task must end
// exactly once, and succeed:
// the run fails on a task without an outcome, a second outcome for a task,
// or a failed one.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "child_process.hpp"
#include "producer.hpp"
#include "remote_bench.hpp"

namespace drover::bench {

namespace {

// The node's settings for the run: a silent runtime is noticed within
// 400 ms and its leases wait 1 s for it, so faults end in seconds; a task
// may be caught by many faults before it succeeds.
// With --attempt-timeout-ms, a lease also ends when its attempt runs too
// long, here while a runtime is frozen yet still connected: its results
// then come after the node took the lease back, and must be refused.
std::string node_settings(std::uint32_t attempt_timeout_ms) {
  std::string s =
      "[node]\n"
      "default_max_attempts = 1000\n";
  if (attempt_timeout_ms) s += "default_timeout_ms = " + std::to_string(attempt_timeout_ms) + "\n";
  return s +
         "[gateway]\n"
         "heartbeat_ms = 200\n"
         "runtime_lease_ttl_ms = 1000\n";
}

/// How long the tasks left when the faults stop may take to end.
constexpr auto drain_limit = std::chrono::seconds(10);

struct fault_counts {
  std::uint32_t kills = 0, freezes = 0;
};

/// The runtime processes, replaced when killed; driven by the fault thread
/// while the producer runs on the main one.
class runtime_fleet {
 public:
  runtime_fleet(std::vector<std::string> base_args, std::uint32_t count) : base_(std::move(base_args)) {
    for (std::uint32_t i = 0; i < count; ++i) runtimes_.push_back(spawn(i));
  }

  bool all_serving() const { return serving_ == runtimes_.size(); }
  std::size_t size() const { return runtimes_.size(); }

  void kill_and_replace(std::size_t i) {
    runtimes_[i]->stop(SIGKILL);
    runtimes_[i] = spawn(static_cast<std::uint32_t>(i));
  }

  /// SIGSTOP for `frozen`, then SIGCONT.
  void freeze(std::size_t i, std::chrono::milliseconds frozen) {
    kill(runtimes_[i]->pid, SIGSTOP);
    std::this_thread::sleep_for(frozen);
    kill(runtimes_[i]->pid, SIGCONT);
  }

 private:
  std::unique_ptr<child> spawn(std::uint32_t i) {
    auto args = base_;
    args.insert(args.end(), {"--name", "faults-" + std::to_string(i) + "-" + std::to_string(generation_++)});
    auto c = std::make_unique<child>(child::spawn(args, SIGKILL));
    if (c->line().find("serving") != std::string::npos) ++serving_;
    else std::fprintf(stderr, "drover bench remote: a runtime did not connect\n");
    return c;
  }

  std::vector<std::string> base_;
  std::vector<std::unique_ptr<child>> runtimes_;
  std::size_t serving_ = 0;
  std::uint32_t generation_ = 0;
};

/// Until `stop`: every 100–400 ms, kill a random runtime or freeze one for
/// 100–1,800 ms (short of the heartbeat, within the lease TTL, or past it).
fault_counts inject_faults(runtime_fleet& fleet, std::uint32_t seed, const std::atomic<bool>& stop) {
  std::mt19937 random(seed);
  fault_counts counts;
  auto pick = [&](std::uint32_t lo, std::uint32_t hi) { return std::uniform_int_distribution<std::uint32_t>(lo, hi)(random); };
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(pick(100, 400)));
    if (stop.load()) break;
    const std::size_t victim = pick(0, static_cast<std::uint32_t>(fleet.size() - 1));
    if (pick(0, 2) == 0) {
      fleet.kill_and_replace(victim);
      ++counts.kills;
    } else {
      const auto frozen = std::chrono::milliseconds(pick(100, 1800));
      fleet.freeze(victim, frozen);
      ++counts.freezes;
    }
  }
  return counts;
}

/// A number at `path` (object keys) in `v`, or 0.
std::uint64_t number_at(const boost::json::value& v, std::initializer_list<std::string_view> path) {
  const boost::json::value* at = &v;
  for (auto key : path) {
    const auto* o = at->if_object();
    if (!o || !(at = o->if_contains(key))) return 0;
  }
  return at->is_number() ? at->to_number<std::uint64_t>() : 0;
}

/// A producer that survives losing its connection, as protocol.md tells a
/// client to: it connects with `?accepted=true` to learn each task's id,
/// submits with an idempotency key, and after a reconnect follows the tasks
/// it knows and submits again (same key) those whose acceptance it never
/// saw. Its own connection is cut every 0.5–2 s (`drops`).
struct resilient_producer {
  std::uint16_t port;
  net::header_format headers;
  std::uint64_t tasks, window;
  std::vector<std::uint64_t> task_id;  // 0: acceptance not seen
  std::vector<char> done;
  std::uint64_t next = 0, answered = 0;  // tasks below `next` were submitted at least once
  std::uint64_t duplicates = 0, failed = 0, rejected = 0, follows = 0, resubmits = 0, drops = 0;
  net::ws_stream* live = nullptr;  // the connection now, for the dropper
  const std::atomic<bool>* stop_drops = nullptr;  // set: no more drops (the faults are over)
  std::mt19937 random;

  resilient_producer(std::uint16_t p, net::header_format h, std::uint64_t n, std::uint64_t w, std::uint32_t seed)
      : port(p), headers(h), tasks(n), window(w), task_id(n, 0), done(n, 0), random(seed) {}

  bool finished() const { return answered == tasks; }
  /// Submitted and still without an outcome: what the channel's window holds.
  std::uint64_t outstanding() const { return next - answered; }

  void append_submit(std::string& message, std::uint64_t seq) {
    append_bench_submit(message, headers, seq, "faults-" + std::to_string(seq));
  }

  void on_outcome(std::string_view body) {
    std::uint64_t seq = 0;
    if (body.size() < 16 || (std::memcpy(&seq, body.data(), 8), seq >= tasks)) {
      ++failed;
      return;
    }
    if (done[seq]) {
      ++duplicates;
      return;
    }
    done[seq] = 1, ++answered;
  }

  void on_text(std::string_view text) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return;
    const auto& o = v.as_object();
    const auto* type = o.if_contains("type");
    if (!type || !type->is_string()) return;
    if (*type == "accepted") {
      const auto ref = number_at(v, {"ref"}), task = number_at(v, {"task"});
      if (ref < tasks) task_id[ref] = task;
    } else if (*type == "rejected" || *type == "error") {
      ++rejected;  // never, with the window kept: the run is unsound
    }
  }

  /// One connection's: the writer ends once `alive` is false, and says so.
  struct connection_flags {
    bool alive = true, writer_done = false;
  };

  asio::awaitable<void> write(net::ws_stream& ws, asio::steady_timer& more, std::shared_ptr<connection_flags> f) {
    co_await write_all(ws, more, *f);
    f->writer_done = true;
  }

  /// What a fresh connection sends first: the channel, then a follow for
  /// each task it knows and is still waiting for, and the submits it never
  /// saw accepted again; then new submits as the window allows.
  asio::awaitable<void> write_all(net::ws_stream& ws, asio::steady_timer& more, const connection_flags& f) {
    ws.text(true);
    const std::string open = R"({"type":"open","channel":1,"window":)" + std::to_string(window) + "}";
    if (auto [ec, n] = co_await ws.async_write(asio::buffer(open), tuple); ec) co_return;
    std::string again;
    for (std::uint64_t seq = 0; seq < next; ++seq) {
      if (done[seq]) continue;
      if (task_id[seq] != 0) {
        const std::string follow = R"({"type":"follow","channel":1,"ref":)" + std::to_string(seq) +
                                   R"(,"task":)" + std::to_string(task_id[seq]) + "}";
        ws.text(true);
        if (auto [ec, n] = co_await ws.async_write(asio::buffer(follow), tuple); ec) co_return;
        ++follows;
      } else {
        append_submit(again, seq);
        ++resubmits;
      }
    }
    ws.binary(true);
    if (!again.empty())
      if (auto [ec, n] = co_await ws.async_write(asio::buffer(again), tuple); ec) co_return;
    std::string message;
    while (next < tasks) {
      while (outstanding() >= window) {
        more.expires_after(std::chrono::seconds(5));
        co_await more.async_wait(tuple);
        if (!f.alive) co_return;
      }
      if (!f.alive) co_return;
      message.clear();
      for (int i = 0; i < 64 && next < tasks && outstanding() < window; ++i) append_submit(message, next++);
      ws.binary(true);
      if (auto [ec, n] = co_await ws.async_write(asio::buffer(message), tuple); ec) co_return;
    }
  }

  asio::awaitable<void> read(net::ws_stream& ws, asio::steady_timer& more) {
    beast::flat_buffer buffer;
    while (!finished()) {
      buffer.clear();
      auto [ec, n] = co_await ws.async_read(buffer, tuple);
      if (ec) co_return;
      const std::string_view message(static_cast<const char*>(buffer.data().data()), buffer.size());
      if (ws.got_text()) {
        on_text(message);
        continue;
      }
      const auto fault = net::for_each_record(message, [&](const net::frame_record& r) {
        on_outcome(message.substr(r.body_offset, r.body_size));
      });
      if (fault) ++failed;
      more.cancel();
    }
  }

  /// Connections one after another until every task has its outcome.
  asio::awaitable<void> run() {
    const auto ex = co_await asio::this_coro::executor;
    const std::string target = std::string("/v1/client?batch=true&accepted=true&headers=") + std::string(net::to_string(headers));
    while (!finished()) {
      net::ws_stream ws(ex);
      auto [cec] = co_await beast::get_lowest_layer(ws).async_connect(
          asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), tuple);
      if (!cec) {
        ws.auto_fragment(false);
        if (auto [hec] = co_await ws.async_handshake("127.0.0.1", target, tuple); !hec) {
          asio::steady_timer more(ex);
          auto flags = std::make_shared<connection_flags>();
          live = &ws;
          asio::co_spawn(ex, write(ws, more, flags), asio::detached);
          co_await read(ws, more);
          live = nullptr;
          // The writer must be done with `ws` and `more` before they go.
          flags->alive = false;
          beast::error_code ignored;
          if (!finished()) beast::get_lowest_layer(ws).close(ignored);
          for (asio::steady_timer settle(ex); !flags->writer_done;) {
            more.cancel();
            settle.expires_after(std::chrono::milliseconds(1));
            co_await settle.async_wait(tuple);
          }
          if (finished()) {
            co_await ws.async_close(websocket::close_code::normal, tuple);
            co_return;
          }
        }
      }
      asio::steady_timer pause(ex, std::chrono::milliseconds(10));
      co_await pause.async_wait(tuple);
    }
  }

  /// Cuts the connection now and then, without a close frame.
  asio::awaitable<void> drop_now_and_then() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!finished()) {
      timer.expires_after(std::chrono::milliseconds(std::uniform_int_distribution<int>(500, 2000)(random)));
      co_await timer.async_wait(tuple);
      if (stop_drops && stop_drops->load()) co_return;
      if (live && !finished()) {
        beast::error_code ignored;
        beast::get_lowest_layer(*live).close(ignored);
        ++drops;
      }
    }
  }
};

/// GET `target` from the node: its JSON body, or null.
boost::json::value get_json(std::uint16_t port, const std::string& target) {
  namespace http = beast::http;
  try {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), port});
    http::request<http::empty_body> req(http::verb::get, target, 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(socket, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    boost::system::error_code ec;
    auto v = boost::json::parse(res.body(), ec);
    return ec ? boost::json::value() : v;
  } catch (const std::exception&) {
    return {};
  }
}

std::string write_settings(const std::string& settings) {
  char path[] = "/tmp/drover-faults-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {};
  close(fd);
  std::ofstream(path) << settings;
  return path;
}

}  // namespace

int run_faults(const remote_options& o) {
  const std::string bin = o.drover_bin.empty() ? this_executable() : o.drover_bin;
  const std::string settings = write_settings(node_settings(o.attempt_timeout_ms));
  if (bin.empty() || settings.empty()) return 1;
  auto server = child::spawn({bin, "serve", "--listen", "127.0.0.1:0", "--config", settings});
  const auto banner = server.line();
  std::remove(settings.c_str());
  const auto at = banner.find("127.0.0.1:");
  if (at == std::string::npos) {
    std::fprintf(stderr, "drover bench remote: the node did not start: %s\n", banner.c_str());
    return 1;
  }
  const std::string connect = banner.substr(at, banner.find_first_not_of("0123456789", at + 10) - at);
  const std::uint32_t capacity = o.capacity ? o.capacity : 8;
  const std::uint32_t connections = o.connections ? o.connections : 1;
  runtime_fleet fleet({bin, "runtime", "--connect", connect, "--queue", "bench", "--capacity", std::to_string(capacity),
                       "--connections", std::to_string(connections), "--handler", "bench", "--work-ms",
                       std::to_string(o.work_ms), "--headers", o.headers},
                      o.runtimes);
  if (!fleet.all_serving()) return 1;

  workload w;
  w.name = "faults";
  w.capacity = capacity;
  w.tasks = o.tasks ? o.tasks : 20'000;
  w.window = std::uint64_t{o.runtimes} * connections * capacity * 2;  // every runtime busy, as many waiting
  const auto port = static_cast<std::uint16_t>(std::stoi(connect.substr(10)));
  producer p(w, port, *net::header_format_named(o.headers));
  resilient_producer rp(port, *net::header_format_named(o.headers), w.tasks, w.window, o.seed);

  std::atomic<bool> stop{false}, faults_over{false};
  fault_counts counts;
  std::thread faults([&] {
    counts = inject_faults(fleet, o.seed, stop);
    faults_over = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  {
    asio::io_context io;
    if (o.client_drops) {
      rp.stop_drops = &stop;
      asio::co_spawn(io, rp.run(), asio::detached);
      asio::co_spawn(io, rp.drop_now_and_then(), asio::detached);
    } else {
      asio::co_spawn(io, p.run(), asio::detached);
    }
    // Faults run while tasks flow, for at most --seconds. Then every task
    // left must end within the drain: a lost runtime's leases come back
    // within twice the heartbeat and the lease TTL (1.4 s), far inside it,
    // while the attempt timeout (30 s unless --attempt-timeout-ms) that
    // would also free them is past it, so a lease the node forgets to
    // release shows up as lost.
    io.run_for(std::chrono::seconds(o.seconds));
    stop = true;
    // The producer keeps reading while the last fault ends (a freeze lasts
    // up to 1.8 s): a client silent for twice the heartbeat is dropped.
    while (!faults_over && !io.stopped()) io.run_for(std::chrono::milliseconds(20));
    faults.join();
    io.run_for(drain_limit);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // What the faults did on the node: attempts retried (a runtime lost with
  // its task), sessions resumed or expired, stale results refused.
  const auto queues = get_json(port, "/v1/queues"), sessions = get_json(port, "/v1/runtimes");
  std::uint64_t retried = 0;
  if (const auto* list = queues.is_object() ? queues.as_object().if_contains("queues") : nullptr; list && list->is_array())
    for (const auto& q : list->as_array()) retried += number_at(q, {"retried"});
  std::uint64_t lost = 0;
  for (std::uint64_t i = 0; i < w.tasks; ++i) lost += o.client_drops ? rp.done[i] == 0 : p.done[i] == 0;
  const std::uint64_t duplicates = o.client_drops ? rp.duplicates : p.duplicates;
  const std::uint64_t failed = o.client_drops ? rp.failed + rp.rejected : p.failed;
  // The node must have come through it too.
  const bool node_alive = waitpid(server.pid, nullptr, WNOHANG) == 0;
  const bool sound = node_alive && lost == 0 && duplicates == 0 && failed == 0;
  std::printf("{\"system\":\"drover\",\"workload\":\"faults\",\"tasks\":%llu,\"lost\":%llu,\"duplicates\":%llu,"
              "\"failed\":%llu,\"kills\":%u,\"freezes\":%u,\"retried\":%llu,\"sessions_parked\":%llu,"
              "\"sessions_resumed\":%llu,\"sessions_expired\":%llu,\"refused_reports\":%llu,\"seconds\":%.1f,"
              "\"seed\":%u,\"client_drops\":%llu,\"follows\":%llu,\"resubmits\":%llu,\"node_alive\":%s,"
              "\"sound\":%s}\n",
              static_cast<unsigned long long>(w.tasks), static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(failed), counts.kills,
              counts.freezes, static_cast<unsigned long long>(retried),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "parked"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "resumed"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "expired"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "refused_reports"})), seconds, o.seed,
              static_cast<unsigned long long>(rp.drops), static_cast<unsigned long long>(rp.follows),
              static_cast<unsigned long long>(rp.resubmits), node_alive ? "true" : "false", sound ? "true" : "false");
  std::fflush(stdout);
  return sound ? 0 : 1;
}

}  // namespace drover::bench
