#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace drover::apps {

struct runtime_options {
  std::string connect = "127.0.0.1:7700";
  std::vector<std::string> queues;
  std::uint32_t capacity = 16;
  std::uint32_t connections = 1;  // runtimes (sessions) this process opens, each with `capacity`
  std::string token;
  std::string name = "drover-runtime";
  std::string handler;  // echo | bench | exec ("" = exec with --exec, else echo)
  std::string exec;     // shell command run per task: payload on stdin, result from stdout
  std::string headers = "compact";  // record headers asked of the node: json | compact
  std::uint32_t work_ms = 0;        // bench: how long each task's handler waits before it answers
};

/// `drover runtime`: a remote runtime process serving queues of a node
/// until SIGINT or SIGTERM.
int run_runtime(const runtime_options& options);

}  // namespace drover::apps
