#pragma once
// `drover bench remote`: the peers kit's workloads (../shared/peers/README.md)
// against a `drover serve` process with runtime processes, over the
// WebSocket client channel and runtime protocol. Prints the peers' JSON fields.
#include <cstdint>
#include <string>

namespace drover::bench {

struct remote_options {
  std::string workload = "W1";  // W1 (latency, open loop) | W2 (throughput, closed loop) | idle | scale | faults
  std::string serve_config;     // a TOML file for the node (default: built-in settings)
  std::string drover_bin;       // the drover binary to start (default: this one)
  std::uint32_t runtimes = 4;
  std::uint32_t capacity = 0;  // per runtime; 0 = the workload's (W1 16, W2 64)
  std::uint64_t tasks = 0;     // counted tasks; 0 = the workload's
  std::uint32_t connections = 0;  // per runtime process; 0 = 1 (idle: 500 / runtimes)
  std::uint32_t seconds = 20;     // idle: measured time; faults: the longest time faults are injected
  std::string headers = "compact";  // record headers of the producer and runtimes: json | compact
  std::uint32_t rounds = 3;         // scale: runs of each size, taken in turn
  std::uint32_t seed = 1;           // faults: which runtimes fail, and when
  std::uint32_t work_ms = 5;        // faults: each task's handler time
  std::uint32_t attempt_timeout_ms = 0;  // faults: the node's attempt timeout (0 = its default, 30 s)
  bool client_drops = false;             // faults: the producer's own connection is cut too
  std::string transport = "websocket";  // idle: websocket (runtime processes) | poll | sse (held by the bench)
  std::uint32_t wait_ms = 20'000;        // idle poll: each claim's wait
  bool json = true;
};

int run_remote(const remote_options& options);

/// `--workload scale`: W2 with 10, 100, 1,000 and 10,000 consumers of
/// capacity 1 (scale_bench.cpp).
int run_scale(const remote_options& options);

/// `--workload faults`: runtime processes killed and frozen while tasks
/// run; fails unless every task ends exactly once and succeeds
/// (fault_bench.cpp).
int run_faults(const remote_options& options);

}  // namespace drover::bench
