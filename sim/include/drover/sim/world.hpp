#pragma once
// One simulated run: a node's real broker actor and remote-consumer actors
// on CAF's deterministic test coordinator (one thread, virtual time),
// simulated runtimes behind simulated links, simulated submitters, and
// faults drawn from the seed. Nothing reads the wall clock, the OS RNG or a
// socket: the same seed and build give the same trace, byte for byte.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "drover/sim/fault_profile.hpp"
#include "drover/sim/invariant_checker.hpp"

namespace drover::sim {

struct sim_options {
  std::uint64_t seed = 1;
  /// Events of the workload phase (submits, deliveries, faults, timers);
  /// then faults stop, submitters stop, and the run drains.
  std::uint64_t steps = 20000;
  fault_profile faults;
  bool keep_trace = false;
  /// Test-only, to see a checker catch a broken node: "forget_outcome"
  /// drops the first outcome an observer hears; "keep_idle_poll_sessions"
  /// never ends an idle long-poll session; "sse_welcome_forgets_demand"
  /// sends every stream's welcome with `requested` 0;
  /// "client_channel_ignores_order" delivers an ordered channel's outcomes as
  /// they come. Empty in
  /// real runs.
  std::string inject;
};

struct sim_result {
  std::uint64_t seed = 0;
  std::optional<violation> failure;
  std::uint64_t trace_hash = 0;
  std::uint64_t events = 0;
  std::uint64_t virtual_ms = 0;
  std::size_t accepted = 0, rejected = 0, ended = 0;
  std::map<std::string, std::uint64_t> faults_fired;  // coverage: how often each fault happened
  std::map<std::string, std::uint64_t> workload;      // coverage: long-poll runtimes, claims, child tasks
  std::vector<std::string> trace_lines;               // with keep_trace
  bool ok() const { return !failure; }
};

sim_result run(const sim_options& options);

}  // namespace drover::sim
