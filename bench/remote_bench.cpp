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

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>

#include "child_process.hpp"
#include "drover/net/binary_frame.hpp"
#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "frame_writer.hpp"
#include "record_writer.hpp"

namespace drover::bench {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

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

struct workload {
  std::string name;
  std::uint32_t capacity = 16;
  std::uint64_t tasks = 0, warmup = 0, window = 0;
  double rate = 0;
};

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

/// The producer: submits over one /v1/client connection (one unordered
/// channel whose window is the workload's), collects outcomes.
struct producer {
  const workload& w;
  std::uint16_t port;
  net::header_format headers;  // of the submits written, asked of the node for outcomes
  std::vector<std::int64_t> submit, start, done;
  std::uint64_t outstanding = 0, answered = 0, failed = 0;
  asio::steady_timer* writer_wait = nullptr;
  std::int64_t elapsed_ns = 0;

  producer(const workload& wl, std::uint16_t p, net::header_format f) : w(wl), port(p), headers(f) {
    const auto n = w.warmup + w.tasks;
    submit.assign(n, 0), start.assign(n, 0), done.assign(n, 0);
  }

  /// One outcome record: the bench handler's result is the task's
  /// sequence number and its handler's start time.
  void on_outcome(std::string_view body, std::int64_t t, std::uint64_t total) {
    if (body.size() < 16) {
      ++failed, ++answered;
      return;
    }
    std::uint64_t seq;
    std::int64_t started;
    std::memcpy(&seq, body.data(), 8);
    std::memcpy(&started, body.data() + 8, 8);
    if (seq < total && done[seq] == 0) {
      start[seq] = started, done[seq] = t;
      ++answered;
      --outstanding;
    }
  }

  asio::awaitable<void> read_outcomes(net::ws_stream& ws) {
    beast::flat_buffer buffer;
    const auto total = w.warmup + w.tasks;
    while (answered < total) {
      buffer.clear();
      auto [ec, n] = co_await ws.async_read(buffer, tuple);
      if (ec) co_return;
      const std::int64_t t = now_ns();
      if (!ws.got_binary()) {  // a rejection: the run is broken
        ++failed, ++answered;
        continue;
      }
      // Records: [u32 header length][JSON header with "bytes"][body] (protocol.md).
      const std::string_view message(static_cast<const char*>(buffer.data().data()), buffer.size());
      const auto fault = net::for_each_record(message, [&](const net::frame_record& r) {
        on_outcome(message.substr(r.body_offset, r.body_size), t, total);
      });
      if (fault) ++failed, ++answered;
      if (writer_wait) writer_wait->cancel();
    }
  }

  /// Appends one submit record (header with "bytes", 64-byte payload).
  void append_submit(std::string& message, std::uint64_t seq) {
    net::record_writer h(message, headers);
    h.field("type", "submit").field("channel", std::uint64_t{1}).field("queue", "bench").field("ref", seq);
    h.end(64);
    char payload[64] = {};
    const std::int64_t t = now_ns();
    std::memcpy(payload, &t, 8);
    std::memcpy(payload + 8, &seq, 8);
    message.append(payload, sizeof payload);
    submit[seq] = t;
    ++outstanding;
  }

  asio::awaitable<void> write_submits(net::ws_stream& ws) {
    const auto total = w.warmup + w.tasks;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::string message;
    const std::int64_t t0 = now_ns();
    ws.binary(true);
    for (std::uint64_t seq = 0; seq < total;) {
      message.clear();
      if (w.rate > 0) {  // open loop: each task leaves on its own at its time
        const std::int64_t due = t0 + std::int64_t(double(seq) * 1e9 / w.rate);
        for (std::int64_t left = due - now_ns(); left > 0; left = due - now_ns()) {
          if (left > 200'000) {
            timer.expires_after(std::chrono::nanoseconds(left - 100'000));
            co_await timer.async_wait(tuple);
          }
        }
        append_submit(message, seq++);
      } else {
        // Closed loop: whatever the window allows leaves as one message of
        // up to 256 records, as the peers' clients batch their writes
        // (nats-core's write buffer, redis's pipeline of 64).
        while (outstanding >= w.window) {
          writer_wait = &timer;
          timer.expires_after(std::chrono::seconds(20));
          co_await timer.async_wait(tuple);
          writer_wait = nullptr;
          if (answered == 0 && now_ns() - t0 > 60'000'000'000) co_return;
        }
        for (int i = 0; i < 256 && seq < total && outstanding < w.window; ++i) append_submit(message, seq++);
      }
      // Into the corked stream and out with the uncork: the send starts
      // here, with no turn of the I/O loop between a task's stamp and it.
      // Masked in place and handed over whole, as the runtime client writes.
      ws.next_layer().cork();
      const auto ec = net::write_whole_message(ws, message, net::writer_role::client);
      ws.next_layer().uncork();
      if (ec) co_return;
    }
  }

  asio::awaitable<void> run() {
    const auto ex = co_await asio::this_coro::executor;
    net::ws_stream ws(ex);
    auto [cec] = co_await beast::get_lowest_layer(ws).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), tuple);
    if (cec) co_return;
    beast::get_lowest_layer(ws).set_option(asio::ip::tcp::no_delay(true));
    ws.auto_fragment(false);  // a batch of submits is one frame, as protocol.md asks of clients
    const std::string target = std::string("/v1/client?batch=true&headers=") + std::string(net::to_string(headers));
    auto [hec] = co_await ws.async_handshake("127.0.0.1", target, tuple);
    if (hec) co_return;
    ws.text(true);
    const std::string open = R"({"type":"open","channel":1,"window":)" +
                             std::to_string(w.window ? w.window : w.warmup + w.tasks) + "}";
    co_await ws.async_write(asio::buffer(open), tuple);
    beast::flat_buffer opened;
    co_await ws.async_read(opened, tuple);
    const std::int64_t t0 = now_ns();
    asio::co_spawn(ex, write_submits(ws), asio::detached);
    co_await read_outcomes(ws);
    elapsed_ns = now_ns() - t0;
    co_await ws.async_close(websocket::close_code::normal, tuple);
  }
};

}  // namespace

int run_remote(const remote_options& o) {
  if (o.workload == "scale") return run_scale(o);
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
    // Connected runtimes with demand signalled and nothing to do: what does the node spend?
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const double node_cpu0 = cpu_seconds(server.pid), all_cpu0 = total_cpu();
    const std::uint64_t bytes0 = loopback_bytes();
    std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
    const double node_cpu = cpu_seconds(server.pid) - node_cpu0, all_cpu = total_cpu() - all_cpu0;
    const std::uint64_t bytes = loopback_bytes() - bytes0;
    std::printf("{\"system\":\"drover\",\"workload\":\"idle\",\"runtimes\":%u,\"seconds\":%u,\"node_cpu_s\":%.3f,"
                "\"node_cpu_pct_of_core\":%.3f,\"all_cpu_s\":%.3f,\"loopback_bytes\":%llu,"
                "\"bytes_per_runtime_per_s\":%.1f}\n",
                o.runtimes * connections, o.seconds, node_cpu, 100.0 * node_cpu / o.seconds, all_cpu,
                static_cast<unsigned long long>(bytes), double(bytes) / (o.runtimes * connections) / o.seconds);
    std::fflush(stdout);
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
  return lost == 0 && p.failed == 0 ? 0 : 1;
}

}  // namespace drover::bench
