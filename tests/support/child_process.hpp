#pragma once
// A child process (the drover binary) with its stdout readable line by line.
#include <csignal>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace drover::test_support {

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

}  // namespace drover::test_support
