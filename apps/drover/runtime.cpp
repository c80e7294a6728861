// `drover runtime`: a remote runtime built on the C++ runtime client. Each
// task runs a handler: `exec` runs a shell command with the payload on its
// stdin and takes its stdout as the result; `echo` returns the payload;
// `bench` is the peers kit's no-op handler (the result carries the task's
// sequence number and the handler's start time), or with --work-ms one that
// waits that long before it answers (a task that is running when a fault
// test kills or pauses its runtime).
#include "runtime.hpp"

#include <array>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "drover/net/runtime_client.hpp"

extern char** environ;

namespace drover::apps {

namespace {

namespace asio = boost::asio;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t exec_output_max = std::size_t{64} << 20;
/// Exit status with which an --exec command fails for good (no retry).
constexpr int exit_permanent_failure = 100;

/// Feeds the payload to the command's stdin, then closes it. Detached: a
/// command may exit without reading it all (EPIPE, SIGPIPE ignored).
asio::awaitable<void> feed(asio::posix::stream_descriptor in, core::bytes payload) {
  co_await asio::async_write(in, asio::buffer(payload.data(), payload.size()), tuple);
}

struct spawned {
  pid_t pid = -1;
  int in = -1, out = -1;
};

spawned spawn_shell(const std::string& command, const net::runtime_task& t) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return {};
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return {};
  }
  // The environment is built before spawning: nothing but exec runs in the child.
  std::vector<std::string> env_strings{"DROVER_TASK_ID=" + std::to_string(t.id().value),
                                       "DROVER_ATTEMPT=" + std::to_string(t.attempt()), "DROVER_QUEUE=" + t.queue()};
  std::vector<char*> env;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "DROVER_", 7) != 0) env.push_back(*e);
  for (auto& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char**>(argv), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]), close(out[1]);
  if (rc != 0) {
    close(in[1]), close(out[0]);
    return {};
  }
  return {pid, in[1], out[0]};
}

/// Waits for the child without blocking the I/O thread; its exit status.
asio::awaitable<int> reap(pid_t pid) {
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pause.expires_after(std::chrono::milliseconds(1));
    co_await pause.async_wait(tuple);
  }
}

asio::awaitable<core::attempt_result> run_exec(const std::string& command, net::runtime_task& t) {
  const auto ex = co_await asio::this_coro::executor;
  const spawned child = spawn_shell(command, t);
  if (child.pid < 0) co_return core::attempt_result::failure(std::string("cannot start the command: ") + std::strerror(errno));
  asio::co_spawn(ex, feed(asio::posix::stream_descriptor(ex, child.in), t.payload()), asio::detached);
  asio::posix::stream_descriptor out(ex, child.out);
  std::string result;
  try {
    // On the heap, not in the coroutine frame: a 64 KiB frame makes g++ 12
    // warn of a mismatched delete in asio's frame allocator (a false positive).
    std::vector<char> buf(65536);
    for (;;) {
      auto [ec, n] = co_await out.async_read_some(asio::buffer(buf), tuple);
      if (ec == asio::error::operation_aborted) throw boost::system::system_error(ec);
      if (ec) break;  // eof
      if (result.size() + n > exec_output_max) {
        kill(child.pid, SIGKILL);
        co_await reap(child.pid);
        co_return core::attempt_result::failure("the command wrote more than 64 MiB", false);
      }
      result.append(buf.data(), n);
    }
  } catch (const boost::system::system_error&) {  // cancelled: stop the command
    kill(child.pid, SIGTERM);
    waitpid(child.pid, nullptr, 0);
    throw;
  }
  const int status = co_await reap(child.pid);
  if (status == 0) co_return core::attempt_result::success(core::bytes::adopt(std::move(result)));
  co_return core::attempt_result::failure("the command exited with status " + std::to_string(status),
                                          status != exit_permanent_failure);
}

std::int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// The bench handler's result: ../shared/peers/README.md, payload
/// [submit_ns:8][seq:8]..., result [seq:8][handler_start_ns:8].
core::attempt_result bench_result(const net::runtime_task& t, std::int64_t start) {
  // Built on the stack and copied once into its buffer: a 16-byte
  // std::string is past the short-string buffer, so adopting one cost two
  // allocations per task.
  std::array<std::byte, 16> r{};
  if (t.payload().size() >= 16) std::memcpy(r.data(), t.payload().data() + 8, 8);
  std::memcpy(r.data() + 8, &start, 8);
  return core::attempt_result::success(core::bytes::copy_from(std::span<const std::byte>(r)));
}

/// echo and bench have nothing to wait for: immediate handlers (no
/// coroutine per task); exec waits for its process: a coroutine handler.
std::unique_ptr<net::runtime_client> start_client(const runtime_options& o, net::runtime_client_config config,
                                                  std::shared_ptr<net::runtime_io> io) {
  const std::string kind = !o.handler.empty() ? o.handler : (o.exec.empty() ? "echo" : "exec");
  if (kind == "echo")
    return net::runtime_client::start(
        std::move(config), [](net::runtime_task& t) { return core::attempt_result::success(t.payload()); }, std::move(io));
  if (kind == "bench" && o.work_ms > 0) {
    const auto work = std::chrono::milliseconds(o.work_ms);
    net::runtime_handler slow = [work](net::runtime_task& t) -> asio::awaitable<core::attempt_result> {
      const std::int64_t start = monotonic_ns();
      asio::steady_timer timer(co_await asio::this_coro::executor, work);
      co_await timer.async_wait(asio::use_awaitable);  // cancelled: throws, and the attempt ends as cancelled
      co_return bench_result(t, start);
    };
    return net::runtime_client::start(std::move(config), std::move(slow), std::move(io));
  }
  if (kind == "bench")
    return net::runtime_client::start(
        std::move(config), [](net::runtime_task& t) { return bench_result(t, monotonic_ns()); }, std::move(io));
  net::runtime_handler exec = [command = o.exec](net::runtime_task& t) { return run_exec(command, t); };
  return net::runtime_client::start(std::move(config), std::move(exec), std::move(io));
}

}  // namespace

int run_runtime(const runtime_options& o) {
  if (o.queues.empty()) {
    std::fprintf(stderr, "drover runtime: at least one --queue\n");
    return 2;
  }
  if (o.handler == "exec" && o.exec.empty()) {
    std::fprintf(stderr, "drover runtime: --handler exec needs --exec COMMAND\n");
    return 2;
  }
  net::runtime_client_config c;
  const auto colon = o.connect.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "drover runtime: --connect must be host:port\n");
    return 2;
  }
  c.host = o.connect.substr(0, colon);
  c.port = static_cast<std::uint16_t>(std::stoul(o.connect.substr(colon + 1)));
  c.queues = o.queues;
  c.capacity = o.capacity;
  c.token = o.token;
  if (const char* env = std::getenv("DROVER_TOKEN"); c.token.empty() && env) c.token = env;
  c.name = o.name;
  c.compact_headers = o.headers == "compact";

  std::signal(SIGPIPE, SIG_IGN);  // a command that exits early must not kill the runtime
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // All connections share one I/O thread: thousands of capacity-1
  // connections cost one thread, not thousands.
  const auto io = net::runtime_io::start();
  std::vector<std::unique_ptr<net::runtime_client>> clients;
  for (std::uint32_t i = 0; i < o.connections; ++i) {
    auto config = c;
    if (o.connections > 1) config.name += "-" + std::to_string(i);
    clients.push_back(start_client(o, config, io));
  }
  std::uint32_t connected = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5 + o.connections / 100);
  for (auto& client : clients) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (client->wait_connected(std::max(left, std::chrono::milliseconds(1)))) ++connected;
  }
  if (connected == o.connections) {
    std::printf("drover runtime: serving %zu queue(s) at %s, capacity %u%s\n", c.queues.size(), o.connect.c_str(),
                c.capacity, o.connections > 1 ? (", " + std::to_string(o.connections) + " connections").c_str() : "");
  } else {
    const auto why = clients.front()->stats().last_error;
    std::printf("drover runtime: %u of %u connected%s%s; retrying\n", connected, o.connections, why.empty() ? "" : ": ",
                why.c_str());
  }
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop_signals, &signal);
  std::uint64_t succeeded = 0, failed = 0, cancelled = 0;
  for (auto& client : clients) {
    client->stop(std::chrono::seconds(10));
    const auto s = client->stats();
    succeeded += s.succeeded, failed += s.failed, cancelled += s.cancelled;
  }
  std::printf("drover runtime: stopped; %llu succeeded, %llu failed, %llu cancelled\n",
              static_cast<unsigned long long>(succeeded), static_cast<unsigned long long>(failed),
              static_cast<unsigned long long>(cancelled));
  return 0;
}

}  // namespace drover::apps
