// The peers' workloads on drover, measured the way ../shared/peers measures
// its systems: the same payload layout (submit time and sequence number),
// the same no-op runtime handler stamping its start time, the same rates,
// windows and capacities, CPU summed over server, runtimes and producer.
#include "remote_bench.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "child_process.hpp"
#include "idle_http_runtimes.hpp"
#include "producer.hpp"

namespace drover::bench {

namespace {

/// CPU seconds (user + sys) of a process, from /proc.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  const auto r = s.rfind(')');
  if (r == std::string::npos) return 0;
  std::istringstream in(s.substr(r + 2));
  std::string tok;
  unsigned long user = 0, sys = 0;
  for (int i = 3; i <= 15 && in >> tok; ++i) {
    if (i == 14) user = std::stoul(tok);
    if (i == 15) sys = std::stoul(tok);
  }
  return double(user + sys) / double(sysconf(_SC_CLK_TCK));
}

workload make_workload(const remote_options& o) {
  workload w;
  w.name = o.workload;
  if (w.name == "W1") w.capacity = 16, w.rate = 2000, w.warmup = 2000, w.tasks = 20'000;
  else if (w.name == "idle") w.capacity = 1;
  else w.capacity = 64, w.window = 10'000, w.tasks = 200'000;
  if (o.capacity) w.capacity = o.capacity;
  if (o.tasks) w.tasks = o.tasks;
  return w;
}

/// Bytes through the loopback interface so far (received = sent on lo).
std::uint64_t loopback_bytes() {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo") continue;
    std::istringstream in(line.substr(colon + 1));
    std::uint64_t rx = 0;
    in >> rx;
    return rx;
  }
  return 0;
}

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return -1;
  const std::size_t i = std::min(v.size() - 1, std::size_t(p * double(v.size())));
  std::nth_element(v.begin(), v.begin() + long(i), v.end());
  return v[i];
}


/// Connected runtimes with demand signalled and nothing to do: what does the
/// node spend over `o.seconds` (after a second to settle), and what crosses
/// loopback? `around(true)` runs as the window opens, `around(false)` as it
/// closes, and returns JSON fields to add.
template <class TotalCpu, class Around>
void measure_idle(const remote_options& o, pid_t node, TotalCpu total_cpu, std::uint32_t runtimes, Around around) {
  std::this_thread::sleep_for(std::chrono::seconds(1));
  around(true);
  const double node_cpu0 = cpu_seconds(node), all_cpu0 = total_cpu();
  const std::uint64_t bytes0 = loopback_bytes();
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  const double node_cpu = cpu_seconds(node) - node_cpu0, all_cpu = total_cpu() - all_cpu0;
  const std::uint64_t bytes = loopback_bytes() - bytes0;
  const std::string extra = around(false);
  std::printf("{\"system\":\"drover\",\"workload\":\"idle\",\"transport\":\"%s\",\"runtimes\":%u,\"seconds\":%u,"
              "\"node_cpu_s\":%.3f,\"node_cpu_pct_of_core\":%.3f,\"all_cpu_s\":%.3f,\"loopback_bytes\":%llu,"
              "\"bytes_per_runtime_per_s\":%.1f%s}\n",
              o.transport.c_str(), runtimes, o.seconds, node_cpu, 100.0 * node_cpu / o.seconds, all_cpu,
              static_cast<unsigned long long>(bytes), double(bytes) / runtimes / o.seconds, extra.c_str());
  std::fflush(stdout);
}

/// `--workload idle --transport poll|sse`: the idle runtimes are held by
/// this process (idle_http_runtimes.hpp) instead of runtime processes.
int run_idle_http(const remote_options& o, pid_t node, std::uint16_t port, std::uint32_t count) {
  idle_http_runtimes idle(port, o.transport, count, "bench", o.wait_ms);
  for (int i = 0; i < 3000 && idle.ready() + idle.failed() < count; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (idle.ready() != count) {
    std::fprintf(stderr, "drover bench remote: %u of %u %s runtimes opened a session\n", idle.ready(), count,
                 o.transport.c_str());
    return 1;
  }
  std::uint64_t answers0 = 0;  // the node's answers to them within the window
  measure_idle(o, node, [&] { return cpu_seconds(getpid()) + cpu_seconds(node); }, count, [&](bool opens) {
    if (opens) answers0 = idle.answers();
    return ",\"answers\":" + std::to_string(idle.answers() - answers0) + ",\"failed\":" + std::to_string(idle.failed());
  });
  return idle.failed() == 0 ? 0 : 1;
}

}  // namespace

int run_remote(const remote_options& o) {
  if (o.workload == "scale") return run_scale(o);
  if (o.workload == "faults") return run_faults(o);
  const workload w = make_workload(o);
  const std::string bin = o.drover_bin.empty() ? this_executable() : o.drover_bin;
  if (bin.empty()) return 1;
  std::vector<std::string> serve_args{bin, "serve", "--listen", "127.0.0.1:0"};
  if (!o.serve_config.empty()) serve_args.insert(serve_args.end(), {"--config", o.serve_config});
  auto server = child::spawn(serve_args);
  const auto banner = server.line();
  const auto at = banner.find("127.0.0.1:");
  if (at == std::string::npos) {
    std::fprintf(stderr, "drover bench remote: the node did not start: %s\n", banner.c_str());
    return 1;
  }
  const auto port = static_cast<std::uint16_t>(std::stoi(banner.substr(at + 10)));
  const std::string connect = "127.0.0.1:" + std::to_string(port);
  const bool idle = w.name == "idle";
  const std::uint32_t connections = o.connections ? o.connections : (idle ? std::max(1u, 500 / o.runtimes) : 1);
  if (idle && o.transport != "websocket") return run_idle_http(o, server.pid, port, o.runtimes * connections);
  std::vector<child> runtimes;
  for (std::uint32_t i = 0; i < o.runtimes; ++i) {
    runtimes.push_back(child::spawn({bin, "runtime", "--connect", connect, "--queue", "bench", "--capacity",
                                     std::to_string(w.capacity), "--handler", "bench", "--name",
                                     "bench-" + std::to_string(i), "--connections", std::to_string(connections),
                                     "--headers", o.headers}));
    if (runtimes.back().line().find("serving") == std::string::npos) {
      std::fprintf(stderr, "drover bench remote: runtime %u did not connect\n", i);
      return 1;
    }
  }
  auto runtimes_cpu = [&] {
    double cpu = 0;
    for (auto& r : runtimes) cpu += cpu_seconds(r.pid);
    return cpu;
  };
  auto total_cpu = [&] { return cpu_seconds(getpid()) + cpu_seconds(server.pid) + runtimes_cpu(); };
  if (idle) {
    measure_idle(o, server.pid, total_cpu, o.runtimes * connections, [](bool) { return std::string(); });
    return 0;
  }
  producer p(w, port, *net::header_format_named(o.headers));
  const double cpu0 = total_cpu(), node0 = cpu_seconds(server.pid), producer0 = cpu_seconds(getpid()),
               runtimes0 = runtimes_cpu();
  {
    asio::io_context io;
    asio::co_spawn(io, p.run(), asio::detached);
    io.run();
  }
  const double cpu = total_cpu() - cpu0;
  // Where W2's CPU goes, per process kind (beyond the peers' fields).
  const double node_cpu = cpu_seconds(server.pid) - node0, producer_cpu = cpu_seconds(getpid()) - producer0,
               runtimes_cpu_s = runtimes_cpu() - runtimes0;

  std::vector<double> dispatch, rtt;
  std::uint64_t lost = 0;
  for (std::uint64_t i = w.warmup; i < w.warmup + w.tasks; ++i) {
    if (!p.done[i]) {
      ++lost;
      continue;
    }
    dispatch.push_back(double(p.start[i] - p.submit[i]) / 1e3);
    rtt.push_back(double(p.done[i] - p.submit[i]) / 1e3);
  }
  // drover's own split of the CPU has a second decimal, to compare changes of a few per cent.
  auto num = [](double v, int decimals = 1) {
    char b[32];
    if (v < 0) return std::string("null");
    std::snprintf(b, sizeof b, "%.*f", decimals, v);
    return std::string(b);
  };
  auto split = [&](double v) { return num(v, 2); };
  const bool latency = w.name == "W1";
  const double elapsed_s = double(p.elapsed_ns) / 1e9;
  const double tps = elapsed_s > 0 ? double(w.tasks - lost) / elapsed_s : 0;
  std::printf(
      "{\"system\":\"drover\",\"workload\":\"%s\",\"dispatch_p50_us\":%s,\"dispatch_p99_us\":%s,\"dispatch_p999_us\":%s,"
      "\"rtt_p50_us\":%s,\"rtt_p99_us\":%s,\"rtt_p999_us\":%s,\"tasks_per_s\":%s,\"cpu_s_per_mtask\":%s,"
      "\"tasks\":%llu,\"lost\":%llu%s}\n",
      w.name.c_str(), num(latency ? pct(dispatch, .5) : -1).c_str(), num(latency ? pct(dispatch, .99) : -1).c_str(),
      num(latency ? pct(dispatch, .999) : -1).c_str(), num(latency ? pct(rtt, .5) : -1).c_str(),
      num(latency ? pct(rtt, .99) : -1).c_str(), num(latency ? pct(rtt, .999) : -1).c_str(),
      num(latency ? -1 : tps).c_str(), num(latency ? -1 : cpu / double(w.warmup + w.tasks) * 1e6).c_str(),
      static_cast<unsigned long long>(w.tasks), static_cast<unsigned long long>(lost),
      latency ? ""
              : (",\"node_cpu_s_per_mtask\":" + split(node_cpu / double(w.warmup + w.tasks) * 1e6) +
                 ",\"producer_cpu_s_per_mtask\":" + split(producer_cpu / double(w.warmup + w.tasks) * 1e6) +
                 ",\"runtimes_cpu_s_per_mtask\":" + split(runtimes_cpu_s / double(w.warmup + w.tasks) * 1e6))
                    .c_str());
  std::fflush(stdout);
  return lost == 0 && p.failed == 0 && p.duplicates == 0 ? 0 : 1;
}

}  // namespace drover::bench
