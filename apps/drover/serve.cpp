// `drover serve`: a standalone node. Settings come from a TOML file
// (configs/drover.toml documents every key), then DROVER_* environment
// variables, then the command line.
#include "serve.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <toml++/toml.h>

#include "drover/drover.hpp"
#include "drover/net/gateway.hpp"

namespace drover::apps {

namespace {

struct serve_config {
  node_config node;
  net::gateway_config gateway;
  std::vector<std::string> queues;  // declared at start
  std::string echo_queue = "echo";  // served in-process by a handler that returns its payload; "" = none
  std::chrono::milliseconds shutdown_grace{10'000};
};

void split_listen(const std::string& listen, net::gateway_config& g) {
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("listen must be address:port, got '" + listen + "'");
  g.address = listen.substr(0, colon);
  const auto port = std::stoul(listen.substr(colon + 1));
  if (port > 65535) throw std::invalid_argument("port out of range in '" + listen + "'");
  g.port = static_cast<std::uint16_t>(port);
}

template <class T>
void read(const toml::table& t, const char* section, const char* key, T& out) {
  if (auto v = t[section][key].value<T>()) out = *v;
}

serve_config load(const serve_options& options) {
  serve_config c;
  // A served node's scheduler thread spins through the gaps between tasks
  // only while they are few (below 2,500 per second): then a wake-up per
  // task would be most of the dispatch latency (W1, 2,000 tasks/s: dispatch
  // p50 ~50 instead of ~88 us). Under load it blocks when idle: the spin
  // only took the core its runtimes and clients needed (W2: 0.8 CPU s per
  // million tasks less, and a lower p99; at 20,000 tasks/s and 10,000
  // consumers a higher threshold spun through bursty gaps and starved the
  // machine). docs/operations.md, docs/benchmarks.md.
  c.node.idle_spin_polls = 0;
  c.node.quiet_spin_polls = 200'000;
  c.node.quiet_rate = 2'500;
  // The broker and the runtimes' consumer actors run on the gateway's I/O
  // thread: no hand-over between threads per message (docs/benchmarks.md).
  c.node.hostable_actors = true;
  // ... so that thread, not a scheduler thread, spins through the gaps while
  // tasks are few (below quiet_rate): W1's dispatch p50 ~60 instead of ~80 us.
  c.gateway.io_quiet_spin = std::chrono::microseconds(1'000);
  if (!options.config_file.empty()) {
    toml::table t = toml::parse_file(options.config_file);  // throws with line and column
    std::int64_t work_limit = c.node.work_limit, max_tasks = static_cast<std::int64_t>(c.node.max_queued_tasks);
    std::int64_t max_bytes = static_cast<std::int64_t>(c.node.max_queued_bytes);
    std::int64_t attempts = c.node.default_max_attempts, timeout_ms = 30'000, payload_max = 64 << 20;
    read(t, "node", "work_limit", work_limit);
    read(t, "node", "max_queued_tasks", max_tasks);
    read(t, "node", "max_queued_bytes", max_bytes);
    read(t, "node", "default_max_attempts", attempts);
    read(t, "node", "default_timeout_ms", timeout_ms);
    read(t, "node", "payload_bytes_max", payload_max);
    std::int64_t threads = static_cast<std::int64_t>(c.node.scheduler_threads);
    std::int64_t spin = static_cast<std::int64_t>(c.node.idle_spin_polls), sleep_polls = static_cast<std::int64_t>(c.node.idle_sleep_polls);
    read(t, "node", "scheduler_threads", threads);
    read(t, "node", "actors_on_gateway_thread", c.node.hostable_actors);
    read(t, "node", "idle_spin_polls", spin);
    read(t, "node", "idle_sleep_polls", sleep_polls);
    std::int64_t quiet_spin = static_cast<std::int64_t>(c.node.quiet_spin_polls);
    double quiet_rate = c.node.quiet_rate;
    read(t, "node", "quiet_spin_polls", quiet_spin);
    read(t, "node", "quiet_rate", quiet_rate);
    if (threads < 0 || spin < 0 || sleep_polls < 0 || quiet_spin < 0 || quiet_rate < 0)
      throw std::invalid_argument("[node] scheduler settings must not be negative");
    c.node.quiet_spin_polls = static_cast<std::size_t>(quiet_spin);
    c.node.quiet_rate = quiet_rate;
    c.node.scheduler_threads = static_cast<std::size_t>(threads);
    c.node.idle_spin_polls = static_cast<std::size_t>(spin);
    c.node.idle_sleep_polls = static_cast<std::size_t>(sleep_polls);
    if (work_limit < 1 || max_tasks < 1 || max_bytes < 1 || attempts < 1 || timeout_ms < 1 || payload_max < 1)
      throw std::invalid_argument("[node] values must be positive");
    c.node.work_limit = static_cast<std::uint32_t>(work_limit);
    c.node.max_queued_tasks = static_cast<std::size_t>(max_tasks);
    c.node.max_queued_bytes = static_cast<std::size_t>(max_bytes);
    c.node.default_max_attempts = static_cast<std::uint16_t>(attempts);
    c.node.default_timeout = std::chrono::milliseconds(timeout_ms);
    c.node.payload_bytes_max = static_cast<std::size_t>(payload_max);
    std::string listen;
    read(t, "gateway", "listen", listen);
    if (!listen.empty()) split_listen(listen, c.gateway);
    std::int64_t idle_ms = c.gateway.idle_timeout.count(), retained = static_cast<std::int64_t>(c.gateway.results_retained);
    std::int64_t heartbeat_ms = c.gateway.heartbeat_interval.count(), lease_ttl_ms = c.gateway.runtime_lease_ttl.count();
    std::int64_t poll_idle_ms = c.gateway.poll_session_idle.count(), wait_max_ms = c.gateway.wait_max.count();
    std::int64_t notes = static_cast<std::int64_t>(c.gateway.notes_retained);
    std::int64_t io_spin_us = c.gateway.io_spin.count(), quiet_spin_us = c.gateway.io_quiet_spin.count();
    std::int64_t outcome_delay_us = c.gateway.busy_outcome_delay.count();
    read(t, "gateway", "io_spin_us", io_spin_us);
    read(t, "gateway", "busy_outcome_delay_us", outcome_delay_us);
    read(t, "gateway", "quiet_spin_us", quiet_spin_us);
    read(t, "gateway", "idle_timeout_ms", idle_ms);
    read(t, "gateway", "results_retained", retained);
    read(t, "gateway", "heartbeat_ms", heartbeat_ms);
    read(t, "gateway", "runtime_lease_ttl_ms", lease_ttl_ms);
    read(t, "gateway", "poll_session_idle_ms", poll_idle_ms);
    read(t, "gateway", "wait_max_ms", wait_max_ms);
    read(t, "gateway", "notes_retained", notes);
    if (idle_ms < 1 || retained < 1 || heartbeat_ms < 1 || lease_ttl_ms < 0 || poll_idle_ms < 1 || wait_max_ms < 0 ||
        notes < 1 || io_spin_us < 0 || io_spin_us > 1'000'000 || quiet_spin_us < 0 || quiet_spin_us > 1'000'000 ||
        outcome_delay_us < 0 || outcome_delay_us > 1'000'000)
      throw std::invalid_argument(
          "[gateway] values must be positive (runtime_lease_ttl_ms, wait_max_ms, io_spin_us, quiet_spin_us and "
          "busy_outcome_delay_us may be 0; the spins and the delay at most 1000000)");
    c.gateway.idle_timeout = std::chrono::milliseconds(idle_ms);
    c.gateway.results_retained = static_cast<std::size_t>(retained);
    c.gateway.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
    c.gateway.runtime_lease_ttl = std::chrono::milliseconds(lease_ttl_ms);
    c.gateway.poll_session_idle = std::chrono::milliseconds(poll_idle_ms);
    c.gateway.wait_max = std::chrono::milliseconds(wait_max_ms);
    c.gateway.notes_retained = static_cast<std::size_t>(notes);
    c.gateway.io_spin = std::chrono::microseconds(io_spin_us);
    c.gateway.io_quiet_spin = std::chrono::microseconds(quiet_spin_us);
    c.gateway.busy_outcome_delay = std::chrono::microseconds(outcome_delay_us);
    c.gateway.body_bytes_max = c.node.payload_bytes_max;
    if (auto tokens = t["gateway"]["tokens"].as_array())
      for (auto& v : *tokens)
        if (auto s = v.value<std::string>()) c.gateway.tokens.push_back(*s);
    if (auto queues = t["queues"]["declare"].as_array())
      for (auto& v : *queues)
        if (auto s = v.value<std::string>()) c.queues.push_back(*s);
    read(t, "queues", "echo", c.echo_queue);
  }
  // One quiet spin at a time, at one rate: the gateway's when it hosts the
  // actors, else the broker's scheduler thread's (each side applies only its
  // own; two spinning threads would take both cores).
  c.gateway.quiet_rate = c.node.quiet_rate;
  if (const char* env = std::getenv("DROVER_LISTEN")) split_listen(env, c.gateway);
  if (const char* env = std::getenv("DROVER_WORK_LIMIT")) c.node.work_limit = static_cast<std::uint32_t>(std::stoul(env));
  if (const char* env = std::getenv("DROVER_TOKEN")) c.gateway.tokens.push_back(env);
  if (!options.listen.empty()) split_listen(options.listen, c.gateway);
  return c;
}

}  // namespace

int run_serve(const serve_options& options) {
  serve_config c;
  try {
    c = load(options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "drover serve: bad configuration: %s\n", e.what());
    return 2;
  }
  // Block the stop signals before any thread starts, so every thread inherits
  // the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto n = node::start(c.node);
  for (const auto& q : c.queues) (void)n->declare_queue(q);
  if (!c.echo_queue.empty()) {
    (void)n->handle(c.echo_queue, [](task_context& ctx) -> asio::awaitable<task_result> {
      co_return task_result::success(ctx.payload());
    });
  }
  auto gw = net::gateway::start(*n, c.gateway);
  if (!gw) {
    std::fprintf(stderr, "drover serve: %s\n", gw.err().message.c_str());
    return 1;
  }
  std::printf("drover serve: listening on %s:%u (work limit %u%s)\n", c.gateway.address.c_str(), (*gw)->port(),
              c.node.work_limit, c.echo_queue.empty() ? "" : (", queue '" + c.echo_queue + "' echoes its payload").c_str());
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::printf("drover serve: %s, stopping\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  (*gw)->stop();  // stop accepting first
  // Let running handlers finish within the grace period; what is still
  // queued is dropped with the node (transient mode: no durable store yet).
  const auto until = std::chrono::steady_clock::now() + c.shutdown_grace;
  while (n->stats().running > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  n->stop();
  return 0;
}

}  // namespace drover::apps
