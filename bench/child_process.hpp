#pragma once
// A child process of a benchmark or a test (the node, a runtime, another
// benchmark) whose standard output is read line by line; stopped and
// reaped when the handle goes (tests/support/child_process.hpp kills
// instead, so a failed test leaves nothing behind).
#include <csignal>
#include <cstdio>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace drover::bench {

struct child {
  pid_t pid = -1;
  FILE* out = nullptr;
  int end_signal = SIGTERM;  // what the destructor sends a child still running

  static child spawn(std::vector<std::string> args, int end_signal = SIGTERM) {
    int fds[2];
    if (pipe(fds) != 0) return {};
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]), close(fds[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    return {pid, fdopen(fds[0], "r"), end_signal};
  }

  /// The next line it writes (with its newline), or empty at its end.
  std::string line() {
    char buf[512];
    return out && std::fgets(buf, sizeof buf, out) ? std::string(buf) : std::string();
  }

  /// Sends `signal` and reaps it: its exit code, or 128 + the signal that ended it.
  int stop(int signal) {
    kill(pid, signal);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  child() = default;
  child(pid_t p, FILE* f, int end) : pid(p), out(f), end_signal(end) {}
  child(child&& o) noexcept
      : pid(std::exchange(o.pid, -1)), out(std::exchange(o.out, nullptr)), end_signal(o.end_signal) {}
  child& operator=(child&&) = delete;
  ~child() {
    if (pid > 0) stop(end_signal);
    if (out) std::fclose(out);
  }
};

/// The path of the running executable (a benchmark starts more of itself),
/// or empty if /proc does not say.
inline std::string this_executable() {
  char path[4096];
  const auto n = readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string();
}

}  // namespace drover::bench
