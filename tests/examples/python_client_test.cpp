// examples/python/drover_client.py, a client written in Python from
// docs/protocol.md alone, against a real `drover serve` process and C++
// runtime processes: an ordered channel gives outcomes in submission order
// however the runtimes finish, an unordered one gives each exactly once, the
// window throttles the client, a failed task is reported in its place, and a
// connection cut again and again still gives every outcome once, in order.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <string>
#include <vector>
#include <sys/wait.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/serve_process.hpp"
#include "support/tcp_proxy.hpp"

using namespace drover::test_support;

namespace {

struct cluster {
  child_process node = child_process::spawn({DROVER_BIN, "serve", "--listen", "127.0.0.1:0"});
  std::uint16_t port = port_from(node.line());
  std::vector<child_process> runtimes;

  /// `count` runtime processes of capacity 8 running `command` for `queue`.
  void serve(const std::string& queue, const std::string& command, int count = 2) {
    for (int i = 0; i < count; ++i) {
      runtimes.push_back(child_process::spawn({DROVER_BIN, "runtime", "--connect", address(), "--queue", queue,
                                               "--capacity", "8", "--exec", command}));
      ASSERT_NE(runtimes.back().line().find("serving"), std::string::npos);
    }
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

struct client_run {
  std::vector<std::string> lines;
  int exit_code = -1;
};

/// Runs the client over `input` (a line per task) to its end.
client_run run_client(const std::string& address, const std::string& queue, const std::vector<std::string>& input,
                      std::vector<std::string> options) {
  std::string text;
  for (const auto& line : input) text += line + "\n";
  const auto path = write_config("python_client_input.txt", text);
  std::vector<std::string> args{PYTHON3, DROVER_PYTHON_CLIENT, "--connect", address, "--queue", queue, "--input", path};
  args.insert(args.end(), options.begin(), options.end());
  auto client = child_process::spawn(std::move(args));
  client_run run;
  for (auto line = client.line(); !line.empty(); line = client.line()) run.lines.push_back(line.substr(0, line.size() - 1));
  int status = 0;
  waitpid(client.pid, &status, 0);
  client.pid = -1;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::vector<std::string> numbered(const std::string& prefix, int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

}  // namespace

TEST(python_client, an_ordered_channel_prints_the_outcomes_in_submission_order) {
  cluster c;
  ASSERT_NE(c.port, 0);
  // Runtimes that finish out of order: some tasks wait a little.
  c.serve("upper", "read line; case $line in *7) sleep 0.05;; esac; printf '%s' \"$line\" | tr a-z A-Z");
  const auto run = run_client(c.address(), "upper", numbered("task ", 300), {"--ordered", "--window", "20"});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.lines, numbered("TASK ", 300));
}

TEST(python_client, an_unordered_channel_prints_every_outcome_once) {
  cluster c;
  ASSERT_NE(c.port, 0);
  c.serve("upper", "tr a-z A-Z");
  const auto run = run_client(c.address(), "upper", numbered("task ", 300), {"--window", "7"});
  EXPECT_EQ(run.exit_code, 0);
  std::set<std::string> seen(run.lines.begin(), run.lines.end());
  std::set<std::string> expected;
  for (int i = 0; i < 300; ++i) expected.insert(std::to_string(i) + "\tTASK " + std::to_string(i));
  EXPECT_EQ(run.lines.size(), 300u);
  EXPECT_EQ(seen, expected);
}

TEST(python_client, a_task_that_fails_is_reported_in_its_place_and_the_exit_status_says_so) {
  cluster c;
  ASSERT_NE(c.port, 0);
  c.serve("picky", "read line; [ \"$line\" = bad ] && exit 100; printf 'ok %s' \"$line\"", 1);
  const auto run = run_client(c.address(), "picky", {"one", "bad", "two"}, {"--ordered"});
  EXPECT_EQ(run.exit_code, 1);
  ASSERT_EQ(run.lines.size(), 3u);
  EXPECT_EQ(run.lines[0], "ok one");
  EXPECT_EQ(run.lines[1].rfind("error: failed", 0), 0u) << run.lines[1];
  EXPECT_EQ(run.lines[2], "ok two");
  const auto unknown = run_client(c.address(), "no-such-queue", {"x"}, {"--ordered"});
  EXPECT_EQ(unknown.exit_code, 1);
  ASSERT_EQ(unknown.lines.size(), 1u);
  EXPECT_EQ(unknown.lines[0].rfind("error: rejected unknown_queue", 0), 0u) << unknown.lines[0];
}

TEST(python_client, a_client_whose_connection_keeps_dropping_still_prints_every_outcome_once_in_order) {
  cluster c;
  ASSERT_NE(c.port, 0);
  c.serve("upper", "read line; case $line in *7) sleep 0.02;; esac; printf '%s' \"$line\" | tr a-z A-Z");
  tcp_proxy proxy(c.port);
  // Cut without a close frame every 100 ms while the client works: it must
  // follow what the node accepted and submit the rest again.
  std::atomic<bool> running{true};
  std::atomic<int> cuts{0};
  std::thread cutter([&] {
    while (running) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (running) proxy.sever(), ++cuts;
    }
  });
  const auto run = run_client("127.0.0.1:" + std::to_string(proxy.port()), "upper", numbered("task ", 400),
                              {"--ordered", "--window", "30"});
  running = false;
  cutter.join();
  EXPECT_GT(cuts.load(), 2) << "the run was too short to be cut";
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.lines, numbered("TASK ", 400));
  // Every task ran once: what was submitted again joined its first task by idempotency key.
  const auto queues = call(c.port, http::verb::get, "/v1/queues").json();
  for (const auto& q : queues.at("queues").as_array()) {
    if (q.at("name").as_string() != "upper") continue;
    EXPECT_EQ(q.at("submitted").to_number<int>(), 400) << q;
  }
}
