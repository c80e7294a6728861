// The scale workload: W2 with 10, 100, 1,000 and 10,000 connected
// consumers of capacity 1 (each a runtime connection of its own), to show
// that dispatch does not slow down with the number of consumers. Each run
// is a `bench remote --workload W2` of its own (a fresh node and fresh
// runtimes); the sizes take turns round after round, so the machine's drift
// falls on all of them alike, and the medians are compared.
#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "child_process.hpp"
#include "remote_bench.hpp"

namespace drover::bench {

namespace {

struct scale_size {
  std::uint32_t runtimes, connections;
  std::uint32_t consumers() const { return runtimes * connections; }
};

// 10 consumers on 2 runtime processes (10 does not split over 4), the rest
// on W2's 4: the figures in docs/benchmarks.md were taken so since the start.
constexpr scale_size sizes[] = {{2, 5}, {4, 25}, {4, 250}, {4, 2500}};

/// One W2 run of `size`; its tasks per second, or nothing if it failed.
std::optional<double> run_size(const std::string& bin, const remote_options& o, scale_size size) {
  std::vector<std::string> args{bin, "bench", "remote", "--workload", "W2", "--capacity", "1",
                                "--tasks", std::to_string(o.tasks ? o.tasks : 50000),
                                "--runtimes", std::to_string(size.runtimes),
                                "--connections", std::to_string(size.connections), "--headers", o.headers, "--json"};
  if (!o.drover_bin.empty()) args.insert(args.end(), {"--drover-bin", o.drover_bin});
  if (!o.serve_config.empty()) args.insert(args.end(), {"--serve-config", o.serve_config});
  auto run = child::spawn(args);
  std::string last;
  for (std::string line = run.line(); !line.empty(); line = run.line()) last = line;
  boost::system::error_code ec;
  const auto v = boost::json::parse(last, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto* rate = v.as_object().if_contains("tasks_per_s");
  const auto* lost = v.as_object().if_contains("lost");
  if (!rate || !rate->is_number() || !lost || *lost != 0) return std::nullopt;  // a run that lost tasks does not count
  return rate->to_number<double>();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string json_list(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(static_cast<long long>(v[i]));
  return out + "]";
}

}  // namespace

int run_scale(const remote_options& o) {
  const std::string bin = this_executable();
  if (bin.empty()) return 1;
  constexpr std::size_t size_count = std::size(sizes);
  std::vector<std::vector<double>> rates(size_count);
  for (std::uint32_t round = 0; round < std::max(o.rounds, 1u); ++round) {
    for (std::size_t i = 0; i < size_count; ++i) {
      const auto rate = run_size(bin, o, sizes[i]);
      if (!rate) {
        std::fprintf(stderr, "drover bench remote: the scale run with %u consumers failed\n", sizes[i].consumers());
        return 1;
      }
      rates[i].push_back(*rate);
      std::fprintf(stderr, "round %u: %u consumers, %.0f tasks/s\n", round + 1, sizes[i].consumers(), *rate);
    }
  }
  std::vector<double> consumers, medians;
  std::string runs = "[";
  for (std::size_t i = 0; i < size_count; ++i) {
    consumers.push_back(sizes[i].consumers());
    medians.push_back(median(rates[i]));
    runs += (i ? "," : "") + json_list(rates[i]);
  }
  runs += "]";
  std::printf("{\"system\":\"drover\",\"workload\":\"scale\",\"consumers\":%s,\"tasks_per_s_median\":%s,"
              "\"tasks_per_s_runs\":%s,\"ratio_10000_to_10\":%.3f}\n",
              json_list(consumers).c_str(), json_list(medians).c_str(), runs.c_str(), medians.back() / medians.front());
  std::fflush(stdout);
  return 0;
}

}  // namespace drover::bench
