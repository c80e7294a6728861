// The drover command line: `drover demo`, `serve`, `runtime`, `bench embedded|remote`.
#include <CLI/CLI.hpp>

#include "demo.hpp"
#include "embedded_bench.hpp"
#include "remote_bench.hpp"
#include "runtime.hpp"
#include "serve.hpp"

int main(int argc, char** argv) {
  CLI::App app{"drover: an actor-based task scheduler"};
  app.require_subcommand(1);

  app.add_subcommand("demo", "run an embedded node with a few handlers and print what happens");

  drover::apps::serve_options serve;
  auto* serve_cmd = app.add_subcommand("serve", "run a node with its HTTP gateway until SIGINT/SIGTERM");
  serve_cmd->add_option("--config", serve.config_file, "TOML settings (see configs/drover.toml)")->check(CLI::ExistingFile);
  serve_cmd->add_option("--listen", serve.listen, "address:port (default 127.0.0.1:7700; port 0 = any)");

  drover::apps::runtime_options runtime;
  auto* runtime_cmd = app.add_subcommand("runtime", "serve queues of a node as a remote runtime until SIGINT/SIGTERM");
  runtime_cmd->add_option("--connect", runtime.connect, "the node's host:port")->envname("DROVER_CONNECT");
  runtime_cmd->add_option("--queue", runtime.queues, "a queue to serve (repeatable)")->required();
  runtime_cmd->add_option("--capacity", runtime.capacity, "most tasks running at once")->check(CLI::Range(1u, 65535u));
  runtime_cmd->add_option("--connections", runtime.connections, "runtimes this process opens (each its own session)")
      ->check(CLI::Range(1u, 10000u));
  runtime_cmd->add_option("--token", runtime.token, "bearer token (or DROVER_TOKEN)");
  runtime_cmd->add_option("--name", runtime.name, "a name for the node's logs");
  runtime_cmd->add_option("--exec", runtime.exec,
                          "shell command per task: payload on stdin, stdout is the result; exit 0 succeeds, "
                          "100 fails for good, anything else is retried");
  runtime_cmd->add_option("--handler", runtime.handler, "echo | bench | exec (default: exec with --exec, else echo)")
      ->check(CLI::IsMember({"echo", "bench", "exec"}));
  runtime_cmd->add_option("--headers", runtime.headers, "record headers asked of the node: compact (default) | json")
      ->check(CLI::IsMember({"json", "compact"}));
  runtime_cmd->add_option("--work-ms", runtime.work_ms, "bench: each handler waits this long before it answers (0 = at once)")
      ->check(CLI::Range(0u, 600'000u));

  auto* bench = app.add_subcommand("bench", "run a benchmark; prints one JSON line per scenario");
  bench->require_subcommand(1);
  drover::bench::embedded_options embedded;
  auto* embedded_cmd = bench->add_subcommand("embedded", "the embedded node: throughput, latency, memory");
  embedded_cmd->add_option("--scenario", embedded.scenario, "throughput | latency | memory | all")
      ->check(CLI::IsMember({"throughput", "latency", "memory", "all"}));
  embedded_cmd->add_option("--tasks", embedded.tasks, "tasks for throughput and memory")->check(CLI::Range(1ull, 100'000'000ull));
  embedded_cmd->add_option("--rate", embedded.rate_per_s, "latency: submits per second")->check(CLI::Range(1u, 1'000'000u));
  embedded_cmd->add_option("--seconds", embedded.latency_seconds, "latency: duration")->check(CLI::Range(1u, 600u));
  embedded_cmd->add_option("--work-limit", embedded.work_limit, "handlers running at once")->check(CLI::Range(1u, 1'000'000u));
  embedded_cmd->add_option("--idle-poll-us", embedded.idle_poll_us, "latency: scheduler idle poll interval");
  embedded_cmd->add_option("--idle-spin-polls", embedded.idle_spin_polls, "latency: polls without sleeping when idle");
  embedded_cmd->add_option("--idle-sleep-polls", embedded.idle_sleep_polls, "latency: sleeping polls before blocking");
  embedded_cmd->add_option("--timer-slack-ns", embedded.timer_slack_ns, "latency: scheduler thread timer slack");
  embedded_cmd->add_option("--window", embedded.window, "throughput: most tasks outstanding (0 = all at once)");
  embedded_cmd->add_option("--batch", embedded.batch, "throughput: tasks per submit_batch call (1 = submit)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  embedded_cmd->add_option("--threads", embedded.threads, "scheduler threads (0 = one per core)");
  embedded_cmd->add_flag("--json", embedded.json, "JSON lines (the only format)");

  drover::bench::remote_options remote;
  auto* remote_cmd = bench->add_subcommand("remote", "the peers' workloads against a drover serve with runtime processes");
  remote_cmd->add_option("--workload", remote.workload,
                         "W1 (latency) | W2 (throughput) | idle (connected runtimes, no tasks) | scale (W2 with 10 to "
                         "10,000 consumers of capacity 1) | faults (runtimes killed and frozen while tasks run: every "
                         "task must end once, and succeed)")
      ->check(CLI::IsMember({"W1", "W2", "idle", "scale", "faults"}));
  remote_cmd->add_option("--transport", remote.transport,
                         "idle: how the idle runtimes connect: websocket (runtime processes) | poll (long-poll claims "
                         "waiting --wait-ms) | sse (streams), the last two held by the bench itself")
      ->check(CLI::IsMember({"websocket", "poll", "sse"}));
  remote_cmd->add_option("--wait-ms", remote.wait_ms, "idle --transport poll: how long each claim waits")
      ->check(CLI::Range(1u, 60'000u));
  remote_cmd->add_option("--rounds", remote.rounds, "scale: runs of each size, taken in turn (medians compared)")
      ->check(CLI::Range(1u, 50u));
  remote_cmd->add_option("--connections", remote.connections, "connections per runtime process (idle: 500 in all)")
      ->check(CLI::Range(1u, 10000u));
  remote_cmd->add_option("--seconds", remote.seconds, "idle: how long to measure; faults: at most how long to inject them")
      ->check(CLI::Range(1u, 600u));
  remote_cmd->add_option("--seed", remote.seed, "faults: the seed of the faults' victims and moments");
  remote_cmd->add_option("--work-ms", remote.work_ms, "faults: how long each task's handler takes")
      ->check(CLI::Range(0u, 10'000u));
  remote_cmd->add_flag("--client-drops", remote.client_drops,
                       "faults: the producer's connection is cut every 0.5-2 s too; it reconnects, follows the tasks "
                       "it knows and submits again (same idempotency key) those it never saw accepted");
  remote_cmd->add_option("--attempt-timeout-ms", remote.attempt_timeout_ms,
                         "faults: the node's attempt timeout (default 30 s; shorter, leases also end while runtimes "
                         "are frozen but connected, and their late results must be refused)")
      ->check(CLI::Range(0u, 600'000u));
  remote_cmd->add_option("--runtimes", remote.runtimes, "runtime processes")->check(CLI::Range(1u, 64u));
  remote_cmd->add_option("--capacity", remote.capacity, "capacity per runtime (default: the workload's)");
  remote_cmd->add_option("--tasks", remote.tasks, "counted tasks (default: the workload's)");
  remote_cmd->add_option("--serve-config", remote.serve_config, "TOML settings for the node")->check(CLI::ExistingFile);
  remote_cmd->add_option("--drover-bin", remote.drover_bin,
                         "the drover binary the node and runtimes run (default: this one): two builds, one benchmark")
      ->check(CLI::ExistingFile);
  remote_cmd->add_option("--headers", remote.headers,
                         "record headers of the producer and runtimes: compact (default) | json")
      ->check(CLI::IsMember({"json", "compact"}));
  remote_cmd->add_flag("--json", remote.json, "JSON lines (the only format)");

  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("demo")) return drover::apps::run_demo();
  if (serve_cmd->parsed()) return drover::apps::run_serve(serve);
  if (runtime_cmd->parsed()) return drover::apps::run_runtime(runtime);
  if (embedded_cmd->parsed()) return drover::bench::run_embedded(embedded);
  if (remote_cmd->parsed()) return drover::bench::run_remote(remote);
  return 1;
}
