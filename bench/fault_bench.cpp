// `drover bench remote --workload faults`: tasks submitted while runtime
// processes are killed (SIGKILL) and frozen (SIGSTOP, then SIGCONT), at
// random moments from a seeded generator. A killed runtime is replaced by a
// new process (a new session: its leases wait out the lease TTL, then go to
// another runtime). A frozen one goes silent: past twice the heartbeat the
// node drops its connection; thawed within the lease TTL it resumes its
// session and keeps its leases, later it finds its session gone and drops
// what it was running (other runtimes have those tasks by then). With a
// short attempt timeout, leases also end under a frozen runtime that is
// still connected, and the results it sends on waking are refused. Every
// accepted task must end exactly once, and succeed:
// the run fails on a task without an outcome, a second outcome for a task,
// or a failed one.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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

/// A number at `path` (object keys) in `v`, or 0.
std::uint64_t number_at(const boost::json::value& v, std::initializer_list<std::string_view> path) {
  const boost::json::value* at = &v;
  for (auto key : path) {
    const auto* o = at->if_object();
    if (!o || !(at = o->if_contains(key))) return 0;
  }
  return at->is_number() ? at->to_number<std::uint64_t>() : 0;
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

  std::atomic<bool> stop{false}, faults_over{false};
  fault_counts counts;
  std::thread faults([&] {
    counts = inject_faults(fleet, o.seed, stop);
    faults_over = true;
  });
  const auto t0 = std::chrono::steady_clock::now();
  {
    asio::io_context io;
    asio::co_spawn(io, p.run(), asio::detached);
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
  for (std::uint64_t i = 0; i < w.tasks; ++i) lost += p.done[i] == 0;
  // The node must have come through it too.
  const bool node_alive = waitpid(server.pid, nullptr, WNOHANG) == 0;
  const bool sound = node_alive && lost == 0 && p.duplicates == 0 && p.failed == 0;
  std::printf("{\"system\":\"drover\",\"workload\":\"faults\",\"tasks\":%llu,\"lost\":%llu,\"duplicates\":%llu,"
              "\"failed\":%llu,\"kills\":%u,\"freezes\":%u,\"retried\":%llu,\"sessions_parked\":%llu,"
              "\"sessions_resumed\":%llu,\"sessions_expired\":%llu,\"refused_reports\":%llu,\"seconds\":%.1f,"
              "\"seed\":%u,\"node_alive\":%s,\"sound\":%s}\n",
              static_cast<unsigned long long>(w.tasks), static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(p.duplicates), static_cast<unsigned long long>(p.failed), counts.kills,
              counts.freezes, static_cast<unsigned long long>(retried),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "parked"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "resumed"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "expired"})),
              static_cast<unsigned long long>(number_at(sessions, {"sessions", "refused_reports"})), seconds, o.seed,
              node_alive ? "true" : "false", sound ? "true" : "false");
  std::fflush(stdout);
  return sound ? 0 : 1;
}

}  // namespace drover::bench
