#include "embedded_bench.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <unistd.h>

#include "drover/drover.hpp"

namespace drover::bench {

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t payload_size = 64;

std::int64_t now_ns() { return clock_type::now().time_since_epoch().count(); }

struct figures {
  std::string scenario;
  std::optional<double> tasks_per_s, p50_us, p99_us, p999_us, bytes_per_queued_task;
  std::uint64_t tasks = 0;
  std::uint64_t failed = 0;  // tasks whose outcome was not success: the figure is void if any
};

std::string field(const std::optional<double>& v) {
  if (!v) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", *v);
  return buf;
}

void print(const figures& f) {
  std::printf(
      "{\"scenario\":\"%s\",\"tasks_per_s\":%s,\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,"
      "\"bytes_per_queued_task\":%s,\"tasks\":%llu,\"failed\":%llu}\n",
      f.scenario.c_str(), field(f.tasks_per_s).c_str(), field(f.p50_us).c_str(), field(f.p99_us).c_str(),
      field(f.p999_us).c_str(), field(f.bytes_per_queued_task).c_str(), static_cast<unsigned long long>(f.tasks),
      static_cast<unsigned long long>(f.failed));
  std::fflush(stdout);
}

double percentile_us(std::vector<std::int64_t>& sorted_ns, double p) {
  if (sorted_ns.empty()) return 0;
  const auto index = static_cast<std::size_t>(std::min<double>(sorted_ns.size() - 1, std::ceil(p * sorted_ns.size()) - 1));
  return static_cast<double>(sorted_ns[index]) / 1000.0;
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

bytes make_payload(std::int64_t stamp) {
  std::string p(payload_size, 'x');
  std::memcpy(p.data(), &stamp, sizeof stamp);
  return bytes::copy_from(p);
}

/// The scheduler settings every scenario takes from the command line, and
/// room for `o.tasks` live tasks.
node_config config_for(const embedded_options& o) {
  node_config config;
  config.max_queued_tasks = o.tasks + 1;
  config.max_queued_bytes = o.tasks * 256 + (1 << 20);
  config.work_limit = o.work_limit;
  config.scheduler_threads = o.threads;
  config.idle_poll_interval = std::chrono::microseconds(o.idle_poll_us);
  config.timer_slack = std::chrono::nanoseconds(o.timer_slack_ns);
  config.idle_spin_polls = o.idle_spin_polls;
  config.idle_sleep_polls = o.idle_sleep_polls;
  return config;
}

handler noop() {
  return [](task_context&) -> asio::awaitable<task_result> { co_return task_result::success({}); };
}

/// submit -> coroutine handler -> result, at most `o.window` outstanding.
figures throughput(const embedded_options& o) {
  auto n = node::start(config_for(o));
  (void)n->handle("bench", noop());
  const bytes payload = make_payload(0);  // shared: the broker never copies it

  std::atomic<std::uint64_t> done{0};
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<bool> submitter_waiting{false};
  std::mutex mutex;
  std::condition_variable all_done;
  std::atomic<std::uint64_t> not_succeeded{0};
  auto on_done = [&](const completion& c) {
    if (!c || c->state != task_state::succeeded) not_succeeded.fetch_add(1);
    const auto finished = done.fetch_add(1) + 1;
    // Wake the submitter once the window is half empty, not per completion.
    const bool window_open = submitter_waiting.load() &&
                             submitted.load() - finished == o.window / 2;
    if (finished == o.tasks || window_open) {
      std::lock_guard lock(mutex);
      all_done.notify_all();
    }
  };
  // One pointer of capture: fits std::function's inline buffer (no allocation).
  auto count_one = [fn = &on_done](const completion& c) { (*fn)(c); };
  // A closed loop like the peers' W2: at most `window` tasks outstanding.
  auto wait_for_window = [&](std::uint64_t sent) {
    submitted.store(sent);
    if (o.window == 0 || sent - done.load(std::memory_order_acquire) < o.window) return;
    std::unique_lock lock(mutex);
    submitter_waiting.store(true);
    all_done.wait(lock, [&] { return sent - done.load(std::memory_order_acquire) <= o.window / 2; });
    submitter_waiting.store(false, std::memory_order_release);
  };
  const auto start = clock_type::now();
  for (std::uint64_t i = 0; i < o.tasks;) {
    wait_for_window(i);
    if (o.batch <= 1) {
      auto h = n->submit("bench", payload);
      if (!h) return std::fprintf(stderr, "submit failed: %s\n", h.err().message.c_str()), figures{"throughput"};
      h->on_complete(count_one);
      ++i;
      continue;
    }
    const auto size = std::min<std::uint64_t>(o.batch, o.tasks - i);
    auto hs = n->submit_batch("bench", std::vector<bytes>(size, payload));
    if (!hs) return std::fprintf(stderr, "submit failed: %s\n", hs.err().message.c_str()), figures{"throughput"};
    for (auto& h : *hs) h.on_complete(count_one);
    i += size;
  }
  const double submit_seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  {
    std::unique_lock lock(mutex);
    all_done.wait(lock, [&] { return done.load() == o.tasks; });
  }
  if (std::getenv("DROVER_BENCH_DEBUG")) std::fprintf(stderr, "submit loop %.3f s\n", submit_seconds);
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  n->stop();
  figures f{o.batch <= 1 ? "throughput" : "throughput_batch_" + std::to_string(o.batch)};
  f.tasks = o.tasks;
  f.failed = not_succeeded.load();
  f.tasks_per_s = static_cast<double>(o.tasks) / seconds;
  return f;
}

/// Open loop at a fixed rate: submit -> handler start, measured in the handler.
figures latency(const embedded_options& o) {
  ::prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);  // the submitter keeps its rate
  auto n = node::start(config_for(o));
  const std::uint64_t total = static_cast<std::uint64_t>(o.rate_per_s) * o.latency_seconds;
  std::vector<std::int64_t> samples(total, -1);
  (void)n->handle("bench", [&samples](task_context& ctx) -> asio::awaitable<task_result> {
    const auto started = now_ns();
    std::int64_t submitted;
    std::memcpy(&submitted, ctx.payload().data(), sizeof submitted);
    std::uint64_t index;
    std::memcpy(&index, ctx.payload().data() + sizeof submitted, sizeof index);
    samples[index] = started - submitted;
    co_return task_result::success({});
  });
  const auto interval = std::chrono::nanoseconds(1'000'000'000 / o.rate_per_s);
  const auto warmup = o.rate_per_s / 2;  // first half second not counted
  auto next = clock_type::now();
  std::vector<task_handle> handles;
  handles.reserve(total);
  for (std::uint64_t i = 0; i < total; ++i) {
    next += interval;
    // Sleep, not spin: on 2 cores a spinning submitter would take a core
    // from the node. Its own wake-up jitter is outside the measured span
    // (the stamp is read after waking).
    std::this_thread::sleep_until(next);
    std::string p(payload_size, 'x');
    const std::int64_t stamp = now_ns();
    std::memcpy(p.data(), &stamp, sizeof stamp);
    std::memcpy(p.data() + sizeof stamp, &i, sizeof i);
    auto h = n->submit("bench", bytes::copy_from(p));
    if (h) handles.push_back(*h);
  }
  for (auto& h : handles) (void)h.wait_for(std::chrono::seconds(10));
  n->stop();
  std::vector<std::int64_t> measured;
  for (std::uint64_t i = warmup; i < total; ++i)
    if (samples[i] >= 0) measured.push_back(samples[i]);
  std::sort(measured.begin(), measured.end());
  figures f{"latency"};
  f.tasks = measured.size();
  f.p50_us = percentile_us(measured, 0.50);
  f.p99_us = percentile_us(measured, 0.99);
  f.p999_us = percentile_us(measured, 0.999);
  return f;
}

/// Queued tasks with no consumer: resident bytes per task beyond its payload.
figures memory(const embedded_options& o) {
  auto n = node::start(config_for(o));
  (void)n->declare_queue("parked");
  std::vector<bytes> payloads;
  payloads.reserve(o.tasks);
  for (std::uint64_t i = 0; i < o.tasks; ++i) payloads.push_back(make_payload(static_cast<std::int64_t>(i)));
  const auto before = resident_bytes();
  for (std::uint64_t i = 0; i < o.tasks; ++i) (void)n->post("parked", payloads[i]);
  while (n->stats().live_tasks < o.tasks) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto after = resident_bytes();
  figures f{"memory"};
  f.tasks = o.tasks;
  f.bytes_per_queued_task = static_cast<double>(after - before) / static_cast<double>(o.tasks);
  n->stop();
  return f;
}

}  // namespace

int run_embedded(const embedded_options& o) {
  const bool all = o.scenario == "all";
  // Memory first: it reads the process's resident size, which memory freed
  // by an earlier scenario (and kept by malloc) would distort.
  if (all || o.scenario == "memory") print(memory(o));
  if (all || o.scenario == "throughput") print(throughput(o));
  if (all || o.scenario == "latency") print(latency(o));
  return 0;
}

}  // namespace drover::bench
