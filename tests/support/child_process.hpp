#pragma once
// A child process (the drover binary) with its stdout readable line by line:
// the benchmarks' (bench/child_process.hpp), killed outright if a test ends
// while it still runs.
#include "../../bench/child_process.hpp"

namespace drover::test_support {

struct child_process : bench::child {
  static child_process spawn(std::vector<std::string> args) {
    return child_process(bench::child::spawn(std::move(args), SIGKILL));
  }
  child_process() = default;
  explicit child_process(bench::child&& c) : bench::child(std::move(c)) {}
};

}  // namespace drover::test_support
