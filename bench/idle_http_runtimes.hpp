#pragma once
// `drover bench remote --workload idle --transport poll|sse`: idle runtimes
// over plain HTTP, held by the bench process itself on one thread. A
// long-poll runtime keeps a claim waiting (`wait_ms`) and claims again when
// it returns empty, as a real one does; an SSE runtime keeps its stream
// open and reads its keepalives. The node should spend nothing on them but
// a timer per wait (docs/protocol.md: "an idle long-poller costs no work").
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace drover::bench {

class idle_http_runtimes {
 public:
  /// `count` runtimes of `transport` ("poll" or "sse") on `queue` at
  /// 127.0.0.1:`port`, each with capacity 1; a claim waits `wait_ms`.
  idle_http_runtimes(std::uint16_t port, const std::string& transport, std::uint32_t count, const std::string& queue,
                     std::uint32_t wait_ms);
  ~idle_http_runtimes();
  idle_http_runtimes(const idle_http_runtimes&) = delete;
  idle_http_runtimes& operator=(const idle_http_runtimes&) = delete;

  /// What the runtimes saw, counted on their thread.
  struct counts {
    std::atomic<std::uint32_t> ready{0};     // runtimes whose session is open (first claim answered, or welcome read)
    std::atomic<std::uint32_t> failed{0};    // runtimes whose connection failed
    std::atomic<std::uint64_t> answers{0};   // answers (claims) or reads (streams) from the node
  };

  std::uint32_t ready() const { return counts_.ready; }
  std::uint32_t failed() const { return counts_.failed; }
  std::uint64_t answers() const { return counts_.answers; }

 private:
  boost::asio::io_context io_;
  counts counts_;
  std::thread thread_;
};

}  // namespace drover::bench
