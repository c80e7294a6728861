// What W1's dispatch latency costs on this machine with no broker at all:
// a producer sends 64-byte stamped messages over loopback TCP to a relay,
// which forwards each at once to a consumer blocked in epoll_wait, which
// reads the clock (docs/benchmarks.md, "W1's floor"). The same hops as
// drover's W1 (producer → node → runtime), with no work between: the
// relay stands in for the node (spinning, as drover serve does while tasks
// are few, or blocking, as redis does), the consumer for a runtime. It
// prints the peers kit's JSON fields.
//
//   drover_loopback_floor [--relay spin|block] [--rate 2000] [--seconds 10]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t message_bytes = 64;

std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

[[noreturn]] void fail(const char* what) {
  std::perror(what);
  std::exit(2);
}

void no_delay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) fail("TCP_NODELAY");
}

/// A listening socket on 127.0.0.1 with an ephemeral port.
int listen_loopback(std::uint16_t& port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 1) != 0) fail("bind/listen");
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

int connect_loopback(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("connect");
  no_delay(fd);
  return fd;
}

int accept_one(int listener) {
  const int fd = accept(listener, nullptr, nullptr);
  if (fd < 0) fail("accept");
  no_delay(fd);
  close(listener);
  return fd;
}

void send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail("send");
    p += k, n -= static_cast<std::size_t>(k);
  }
}

/// Forwards whatever arrives; `spin` polls the way an event loop that does
/// not sleep does (epoll_wait with a zero timeout), else it blocks.
void relay(int in, int out, bool spin) {
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = in;
  epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
  char buf[65536];
  for (;;) {
    epoll_event got;
    const int n = epoll_wait(ep, &got, 1, spin ? 0 : -1);
    if (n <= 0) continue;
    const ssize_t k = recv(in, buf, sizeof buf, MSG_DONTWAIT);
    if (k == 0) return;
    if (k > 0) send_all(out, buf, static_cast<std::size_t>(k));
  }
}

/// Reads stamped messages until the producer's end marker (a zero stamp);
/// writes each dispatch latency in ns to `report`.
void consume(int in, int report) {
  const int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = in;
  epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev);
  std::string pending;
  char buf[65536];
  std::vector<std::int64_t> latencies;
  for (;;) {
    epoll_event got;
    if (epoll_wait(ep, &got, 1, -1) <= 0) continue;
    const ssize_t k = recv(in, buf, sizeof buf, MSG_DONTWAIT);
    const std::int64_t t = now_ns();
    if (k == 0) break;
    if (k < 0) continue;
    pending.append(buf, static_cast<std::size_t>(k));
    std::size_t at = 0;
    for (; pending.size() - at >= message_bytes; at += message_bytes) {
      std::int64_t stamp;
      std::memcpy(&stamp, pending.data() + at, sizeof stamp);
      if (stamp == 0) {
        const auto bytes = latencies.size() * sizeof(std::int64_t);
        if (write(report, latencies.data(), bytes) != static_cast<ssize_t>(bytes)) fail("report");
        return;
      }
      latencies.push_back(t - stamp);
    }
    pending.erase(0, at);
  }
}

double percentile_us(std::vector<std::int64_t>& v, double p) {
  if (v.empty()) return 0;
  const auto i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i), v.end());
  return static_cast<double>(v[i]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  bool spin = true;
  double rate = 2000, seconds = 10, warmup = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--relay") spin = std::string_view(argv[i + 1]) != "block";
    else if (flag == "--rate") rate = std::atof(argv[i + 1]);
    else if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--relay spin|block] [--rate N] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  std::uint16_t relay_port = 0, consumer_port = 0;
  const int relay_listener = listen_loopback(relay_port);
  const int consumer_listener = listen_loopback(consumer_port);
  int report[2];
  if (pipe(report) != 0) fail("pipe");

  const pid_t consumer_pid = fork();
  if (consumer_pid == 0) {
    close(relay_listener), close(report[0]);
    consume(accept_one(consumer_listener), report[1]);
    _exit(0);
  }
  const pid_t relay_pid = fork();
  if (relay_pid == 0) {
    close(consumer_listener), close(report[0]), close(report[1]);  // the producer reads to the consumer's end
    const int out = connect_loopback(consumer_port);
    relay(accept_one(relay_listener), out, spin);
    _exit(0);
  }
  close(relay_listener), close(consumer_listener), close(report[1]);

  const int out = connect_loopback(relay_port);
  const auto total = static_cast<std::uint64_t>(rate * (seconds + warmup));
  const std::int64_t t0 = now_ns();
  char message[message_bytes] = {};
  for (std::uint64_t seq = 0; seq < total; ++seq) {
    // As drover's producer: sleep to 100 µs before the due time, then spin.
    const std::int64_t due = t0 + static_cast<std::int64_t>(static_cast<double>(seq) * 1e9 / rate);
    if (const std::int64_t left = due - now_ns(); left > 200'000) {
      const timespec nap{0, left - 100'000};
      nanosleep(&nap, nullptr);
    }
    while (now_ns() < due) {
    }
    const std::int64_t stamp = now_ns();
    std::memcpy(message, &stamp, sizeof stamp);
    send_all(out, message, sizeof message);
  }
  std::memset(message, 0, sizeof message);
  send_all(out, message, sizeof message);

  std::vector<std::int64_t> all;
  std::int64_t v;
  while (read(report[0], &v, sizeof v) == sizeof v) all.push_back(v);
  close(out);
  waitpid(relay_pid, nullptr, 0);
  waitpid(consumer_pid, nullptr, 0);
  const auto skip = std::min(all.size(), static_cast<std::size_t>(rate * warmup));
  std::vector<std::int64_t> counted(all.begin() + static_cast<std::ptrdiff_t>(skip), all.end());
  const auto n = counted.size();
  std::printf(
      "{\"system\":\"loopback-floor-%s\",\"workload\":\"W1\",\"dispatch_p50_us\":%.1f,\"dispatch_p99_us\":%.1f,"
      "\"dispatch_p999_us\":%.1f,\"rtt_p50_us\":null,\"rtt_p99_us\":null,\"rtt_p999_us\":null,\"tasks_per_s\":null,"
      "\"cpu_s_per_mtask\":null,\"tasks\":%zu,\"lost\":%zu}\n",
      spin ? "spin" : "block", percentile_us(counted, 0.5), percentile_us(counted, 0.99), percentile_us(counted, 0.999), n,
      static_cast<std::size_t>(total - skip) - n);
  return 0;
}
