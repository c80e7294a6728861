// `drover serve` as a separate process: start, submit over HTTP, SIGTERM, exit 0.
#include <gtest/gtest.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "support/http_client.hpp"

using namespace drover::test_support;

namespace {

struct child_process {
  pid_t pid = -1;
  FILE* out = nullptr;

  static child_process spawn(std::vector<std::string> args) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    return {pid, fdopen(fds[0], "r")};
  }

  std::string line() {
    char buf[512];
    return out && std::fgets(buf, sizeof buf, out) ? std::string(buf) : std::string();
  }

  int stop(int signal) {
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    if (out) std::fclose(out);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  ~child_process() {
    if (pid > 0) stop(SIGKILL);
  }
};

std::uint16_t port_from(const std::string& banner) {
  const auto colon = banner.find("127.0.0.1:");
  return colon == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoi(banner.substr(colon + 10)));
}

}  // namespace

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
  const std::string path = ::testing::TempDir() + "bad_drover.toml";
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("[node]\nwork_limit = 0\n", f);
  std::fclose(f);
  auto child = child_process::spawn({DROVER_BIN, "serve", "--config", path});
  int status = 0;
  waitpid(child.pid, &status, 0);
  child.pid = -1;
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}
