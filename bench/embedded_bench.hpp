#pragma once
// `drover bench embedded`: throughput, latency and memory of the embedded
// node. One JSON line per scenario (docs/benchmarks.md).
#include <cstdint>
#include <string>

namespace drover::bench {

struct embedded_options {
  std::string scenario = "all";  // throughput | latency | memory | all
  std::uint64_t tasks = 1'000'000;
  std::uint32_t rate_per_s = 10'000;      // latency: open-loop submit rate
  std::uint32_t latency_seconds = 3;
  std::uint32_t work_limit = 1024;
  std::uint32_t idle_poll_us = 10;
  std::size_t idle_spin_polls = 20'000;
  std::size_t idle_sleep_polls = 0;
  std::uint32_t timer_slack_ns = 1000;
  std::size_t threads = 0;  // scheduler threads; 0 = one per core
  std::uint64_t window = 10'000;  // throughput: most tasks outstanding (as the peers' W2); 0 = no limit
  std::size_t batch = 1;    // throughput: tasks per submit call (1 = submit, more = submit_batch)
  bool json = true;
};

int run_embedded(const embedded_options& options);

}  // namespace drover::bench
