// drover-sim: runs the real broker on virtual time with simulated runtimes,
// submitters, network and faults, one seed per scenario (docs/simulation.md).
//   drover-sim --seed 7 [--steps 20000] [--faults default|none|harsh] [--fault loss=0.05 ...] [--trace FILE]
//   drover-sim --seeds 1..200          a range; stops at the first failing seed
//   drover-sim --soak                   10,000 seeds
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "drover/sim/world.hpp"

namespace {

struct range {
  std::uint64_t first = 1, last = 1;
};

bool parse_range(const std::string& text, range& out) {
  const auto dots = text.find("..");
  try {
    if (dots == std::string::npos) return false;
    out.first = std::stoull(text.substr(0, dots));
    out.last = std::stoull(text.substr(dots + 2));
    return out.first <= out.last;
  } catch (const std::exception&) {
    return false;
  }
}

std::string replay_command(const drover::sim::sim_options& o, const std::vector<std::string>& fault_sets) {
  std::string out = "build/bin/drover-sim --seed " + std::to_string(o.seed) + " --steps " + std::to_string(o.steps) +
                    " --faults " + o.faults.name;
  for (const auto& f : fault_sets) out += " --fault " + f;
  return out + " --trace sim-" + std::to_string(o.seed) + ".trace";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"drover-sim: the real scheduler on virtual time, with faults, replayable by seed"};
  std::uint64_t seed = 1, steps = drover::sim::sim_options{}.steps;
  std::string seeds, faults = "default", trace_path;
  bool soak = false, quiet = false;
  std::vector<std::string> fault_sets;
  app.add_option("--seed", seed, "run this one seed");
  app.add_option("--seeds", seeds, "run a range of seeds, A..B");
  app.add_option("--steps", steps, "events in the workload phase, before the run drains")->check(CLI::Range(1, 100'000'000));
  app.add_option("--faults", faults, "fault profile: default, none or harsh");
  app.add_option("--fault", fault_sets, "set one fault of the profile, NAME=VALUE (repeatable), e.g. loss=0.05 crash=0.1");
  app.add_option("--trace", trace_path, "write the event trace of a single seed to this file");
  app.add_flag("--soak", soak, "run seeds 1..10000");
  app.add_flag("--quiet", quiet, "print only failures and the summary");
  CLI11_PARSE(app, argc, argv);

  drover::sim::sim_options o;
  o.steps = steps;
  auto profile = drover::sim::fault_profile::named(faults);
  if (!profile) {
    std::fprintf(stderr, "unknown fault profile '%s' (default, none, harsh)\n", faults.c_str());
    return 2;
  }
  o.faults = *profile;
  for (const auto& f : fault_sets) {
    const auto eq = f.find('=');
    double value = -1;
    try {
      if (eq != std::string::npos) value = std::stod(f.substr(eq + 1));
    } catch (const std::exception&) {
    }
    if (eq == std::string::npos || !o.faults.set(std::string_view(f).substr(0, eq), value)) {
      std::fprintf(stderr, "--fault %s: expected NAME=VALUE with a fault of docs/simulation.md and a value in its range\n",
                   f.c_str());
      return 2;
    }
  }
  range r{seed, seed};
  if (soak) r = {1, 10'000};
  if (!seeds.empty() && !parse_range(seeds, r)) {
    std::fprintf(stderr, "--seeds takes A..B with A <= B\n");
    return 2;
  }
  o.keep_trace = !trace_path.empty();
  if (o.keep_trace && r.first != r.last) {
    std::fprintf(stderr, "--trace needs a single seed\n");
    return 2;
  }

  const auto started = std::chrono::steady_clock::now();
  std::uint64_t passed = 0, events = 0;
  std::map<std::string, std::uint64_t> coverage, workload;
  for (std::uint64_t s = r.first; s <= r.last; ++s) {
    o.seed = s;
    const auto result = drover::sim::run(o);
    events += result.events;
    for (const auto& [fault, n] : result.faults_fired) coverage[fault] += n;
    for (const auto& [kind, n] : result.workload) workload[kind] += n;
    if (o.keep_trace) {
      std::ofstream out(trace_path);
      for (const auto& line : result.trace_lines) out << line << '\n';
    }
    if (!quiet || !result.ok())
      std::printf("seed %llu: %s trace %016llx events %llu virtual %llu ms tasks %zu accepted %zu rejected %zu ended\n",
                  static_cast<unsigned long long>(s), result.ok() ? "ok" : "FAILED",
                  static_cast<unsigned long long>(result.trace_hash), static_cast<unsigned long long>(result.events),
                  static_cast<unsigned long long>(result.virtual_ms), result.accepted, result.rejected, result.ended);
    if (!result.ok()) {
      std::printf("  violation %s: %s\n  replay: %s\n", result.failure->invariant.c_str(), result.failure->detail.c_str(),
                  replay_command(o, fault_sets).c_str());
      return 1;
    }
    ++passed;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string profile_name = o.faults.name;
  for (const auto& f : fault_sets) profile_name += " " + f;
  std::printf("%llu seeds passed (%s faults, %llu steps each) in %.1f s: %.1f seeds/s, %llu events\n",
              static_cast<unsigned long long>(passed), profile_name.c_str(), static_cast<unsigned long long>(o.steps),
              seconds, double(passed) / seconds, static_cast<unsigned long long>(events));
  std::printf("faults fired:");
  for (const auto& [fault, n] : coverage) std::printf(" %s %llu", fault.c_str(), static_cast<unsigned long long>(n));
  std::printf("\nworkload:");
  for (const auto& [kind, n] : workload) std::printf(" %s %llu", kind.c_str(), static_cast<unsigned long long>(n));
  std::printf("\n");
  return 0;
}
