// `drover serve` as a separate process: start, submit over HTTP, SIGTERM, exit 0.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/serve_process.hpp"

using namespace drover::test_support;

TEST(serve_process, serves_http_then_stops_cleanly_on_sigterm) {
  auto child = child_process::spawn({DROVER_BIN, "serve", "--listen", "127.0.0.1:0"});
  ASSERT_GT(child.pid, 0);
  const auto banner = child.line();
  const auto port = port_from(banner);
  ASSERT_NE(port, 0) << "banner: " << banner;
  auto submitted = call(port, http::verb::post, "/v1/queues/echo/tasks", "over the wire");
  ASSERT_EQ(submitted.status, 202u) << submitted.body;
  const auto id = std::to_string(submitted.json().at("id").to_number<std::uint64_t>());
  auto status = call(port, http::verb::get, "/v1/tasks/" + id + "?wait_ms=10000");
  EXPECT_EQ(status.json().at("state").as_string(), "succeeded") << status.body;
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + id + "/result").body, "over the wire");
  EXPECT_EQ(child.stop(SIGTERM), 0) << "SIGTERM must stop the node cleanly with exit code 0";
}

TEST(serve_process, a_bad_config_file_is_refused_with_exit_code_2) {
  for (const char* bad : {"[node]\nwork_limit = 0\n", "[gateway]\nbusy_outcome_delay_us = -1\n"}) {
    SCOPED_TRACE(bad);
    const std::string path = write_config("bad_drover.toml", bad);
    auto child = child_process::spawn({DROVER_BIN, "serve", "--config", path});
    int status = 0;
    waitpid(child.pid, &status, 0);
    child.pid = -1;
    EXPECT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 2);
  }
}

TEST(runtime_process, runtime_processes_serve_tasks_submitted_over_http) {
  auto node = child_process::spawn({DROVER_BIN, "serve", "--listen", "127.0.0.1:0"});
  const auto port = port_from(node.line());
  ASSERT_NE(port, 0);
  const std::string connect = "127.0.0.1:" + std::to_string(port);
  auto a = child_process::spawn({DROVER_BIN, "runtime", "--connect", connect, "--queue", "upper", "--exec", "tr a-z A-Z"});
  auto b = child_process::spawn({DROVER_BIN, "runtime", "--connect", connect, "--queue", "upper", "--exec", "tr a-z A-Z"});
  ASSERT_NE(a.line().find("serving"), std::string::npos);
  ASSERT_NE(b.line().find("serving"), std::string::npos);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(submit(port, "upper", "task " + std::to_string(i)));
  for (int i = 0; i < 20; ++i) {
    auto status = call(port, http::verb::get, "/v1/tasks/" + ids[i] + "?wait_ms=10000");
    ASSERT_EQ(status.json().at("state").as_string(), "succeeded") << status.body;
    EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + ids[i] + "/result").body, "TASK " + std::to_string(i));
  }
  EXPECT_EQ(a.stop(SIGTERM), 0);
  EXPECT_EQ(b.stop(SIGTERM), 0);
  EXPECT_EQ(node.stop(SIGTERM), 0);
}

TEST(runtime_process, a_runtime_killed_mid_task_hands_its_task_to_another) {
  const auto config = write_config("kill_test.toml",
                                   "[gateway]\nlisten = \"127.0.0.1:0\"\nruntime_lease_ttl_ms = 300\nheartbeat_ms = 500\n");
  auto node = child_process::spawn({DROVER_BIN, "serve", "--config", config});
  const auto port = port_from(node.line());
  ASSERT_NE(port, 0);
  const std::string connect = "127.0.0.1:" + std::to_string(port);
  // The first runtime takes the task and hangs in it (bounded: 5 s).
  auto doomed = child_process::spawn({DROVER_BIN, "runtime", "--connect", connect, "--queue", "work", "--exec",
                                      "exec 2>/dev/null; cat >/dev/null; sleep 5; printf doomed"});
  ASSERT_NE(doomed.line().find("serving"), std::string::npos);
  const auto id = submit(port, "work", "payload");
  ASSERT_TRUE(becomes_leased(port, id, std::chrono::milliseconds(2500)));
  auto rescuer = child_process::spawn({DROVER_BIN, "runtime", "--connect", connect, "--queue", "work", "--exec",
                                       "cat >/dev/null; printf \"rescued, attempt $DROVER_ATTEMPT\""});
  ASSERT_NE(rescuer.line().find("serving"), std::string::npos);
  EXPECT_EQ(doomed.stop(SIGKILL), 128 + SIGKILL);
  auto status = call(port, http::verb::get, "/v1/tasks/" + id + "?wait_ms=10000");
  ASSERT_EQ(status.json().at("state").as_string(), "succeeded") << status.body;
  EXPECT_EQ(status.json().at("attempts").as_int64(), 2);
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + id + "/result").body, "rescued, attempt 2");
  EXPECT_EQ(rescuer.stop(SIGTERM), 0);
  EXPECT_EQ(node.stop(SIGTERM), 0);
}
