#pragma once
// The producer of `drover bench remote`'s workloads: submits stamped tasks
// over one /v1/client connection and collects their outcomes, as the peers
// kit's producer does (../shared/peers/README.md). The fault workload
// (fault_bench.cpp) uses it too.
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>

#include "drover/net/binary_frame.hpp"
#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "frame_writer.hpp"
#include "record_writer.hpp"

namespace drover::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
inline constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

inline std::int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

/// Appends the submit record of task `seq` on channel 1 to `message`: its
/// header (with an idempotency key if given, and "bytes") and the peers'
/// 64-byte payload, [submit_ns:8][seq:8] then zeros. Returns the submit time.
inline std::int64_t append_bench_submit(std::string& message, net::header_format headers, std::uint64_t seq,
                                        std::string_view idempotency_key = {}) {
  net::record_writer h(message, headers);
  h.field("type", "submit").field("channel", std::uint64_t{1}).field("queue", "bench").field("ref", seq);
  if (!idempotency_key.empty()) h.field("idempotency_key", idempotency_key);
  h.end(64);
  char payload[64] = {};
  const std::int64_t t = now_ns();
  std::memcpy(payload, &t, 8);
  std::memcpy(payload + 8, &seq, 8);
  message.append(payload, sizeof payload);
  return t;
}

/// What the producer runs: W1's rate (open loop) or W2's window (closed).
struct workload {
  std::string name;
  std::uint32_t capacity = 16;
  std::uint64_t tasks = 0, warmup = 0, window = 0;
  double rate = 0;
};

/// The producer: submits over one /v1/client connection (one unordered
/// channel whose window is the workload's), collects outcomes.
struct producer {
  const workload& w;
  std::uint16_t port;
  net::header_format headers;  // of the submits written, asked of the node for outcomes
  std::vector<std::int64_t> submit, start, done;
  std::uint64_t outstanding = 0, answered = 0, failed = 0;
  std::uint64_t duplicates = 0;  // outcomes for a task already answered: never, if each task ends once
  asio::steady_timer* writer_wait = nullptr;
  std::int64_t elapsed_ns = 0;

  producer(const workload& wl, std::uint16_t p, net::header_format f) : w(wl), port(p), headers(f) {
    const auto n = w.warmup + w.tasks;
    submit.assign(n, 0), start.assign(n, 0), done.assign(n, 0);
  }

  /// One outcome record: the bench handler's result is the task's
  /// sequence number and its handler's start time.
  void on_outcome(std::string_view body, std::int64_t t, std::uint64_t total) {
    if (body.size() < 16) {
      ++failed, ++answered;
      return;
    }
    std::uint64_t seq;
    std::int64_t started;
    std::memcpy(&seq, body.data(), 8);
    std::memcpy(&started, body.data() + 8, 8);
    if (seq >= total) {
      ++failed, ++answered;  // not a task of this run
      return;
    }
    if (done[seq] != 0) {
      ++duplicates;
      return;
    }
    start[seq] = started, done[seq] = t;
    ++answered;
    --outstanding;
  }

  asio::awaitable<void> read_outcomes(net::ws_stream& ws) {
    beast::flat_buffer buffer;
    const auto total = w.warmup + w.tasks;
    while (answered < total) {
      buffer.clear();
      auto [ec, n] = co_await ws.async_read(buffer, tuple);
      if (ec) co_return;
      const std::int64_t t = now_ns();
      if (!ws.got_binary()) {  // a rejection: the run is broken
        ++failed, ++answered;
        continue;
      }
      // Records: [u32 header length][JSON header with "bytes"][body] (protocol.md).
      const std::string_view message(static_cast<const char*>(buffer.data().data()), buffer.size());
      const auto fault = net::for_each_record(message, [&](const net::frame_record& r) {
        on_outcome(message.substr(r.body_offset, r.body_size), t, total);
      });
      if (fault) ++failed, ++answered;
      if (writer_wait) writer_wait->cancel();
    }
  }

  void append_submit(std::string& message, std::uint64_t seq) {
    submit[seq] = append_bench_submit(message, headers, seq);
    ++outstanding;
  }

  asio::awaitable<void> write_submits(net::ws_stream& ws) {
    const auto total = w.warmup + w.tasks;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    std::string message;
    const std::int64_t t0 = now_ns();
    ws.binary(true);
    for (std::uint64_t seq = 0; seq < total;) {
      message.clear();
      if (w.rate > 0) {  // open loop: each task leaves on its own at its time
        const std::int64_t due = t0 + std::int64_t(double(seq) * 1e9 / w.rate);
        for (std::int64_t left = due - now_ns(); left > 0; left = due - now_ns()) {
          if (left > 200'000) {
            timer.expires_after(std::chrono::nanoseconds(left - 100'000));
            co_await timer.async_wait(tuple);
          }
        }
        append_submit(message, seq++);
      } else {
        // Closed loop: whatever the window allows leaves as one message of
        // up to 256 records, as the peers' clients batch their writes
        // (nats-core's write buffer, redis's pipeline of 64).
        while (outstanding >= w.window) {
          writer_wait = &timer;
          timer.expires_after(std::chrono::seconds(20));
          co_await timer.async_wait(tuple);
          writer_wait = nullptr;
          if (answered == 0 && now_ns() - t0 > 60'000'000'000) co_return;
        }
        for (int i = 0; i < 256 && seq < total && outstanding < w.window; ++i) append_submit(message, seq++);
      }
      // Into the corked stream and out with the uncork: the send starts
      // here, with no turn of the I/O loop between a task's stamp and it.
      // Masked in place and handed over whole, as the runtime client writes.
      ws.next_layer().cork();
      const auto ec = net::write_whole_message(ws, message, net::writer_role::client);
      ws.next_layer().uncork();
      if (ec) co_return;
    }
  }

  asio::awaitable<void> run() {
    const auto ex = co_await asio::this_coro::executor;
    net::ws_stream ws(ex);
    auto [cec] = co_await beast::get_lowest_layer(ws).async_connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), tuple);
    if (cec) co_return;
    beast::get_lowest_layer(ws).set_option(asio::ip::tcp::no_delay(true));
    ws.auto_fragment(false);  // a batch of submits is one frame, as protocol.md asks of clients
    const std::string target = std::string("/v1/client?batch=true&headers=") + std::string(net::to_string(headers));
    auto [hec] = co_await ws.async_handshake("127.0.0.1", target, tuple);
    if (hec) co_return;
    ws.text(true);
    const std::string open = R"({"type":"open","channel":1,"window":)" +
                             std::to_string(w.window ? w.window : w.warmup + w.tasks) + "}";
    co_await ws.async_write(asio::buffer(open), tuple);
    beast::flat_buffer opened;
    co_await ws.async_read(opened, tuple);
    const std::int64_t t0 = now_ns();
    asio::co_spawn(ex, write_submits(ws), asio::detached);
    co_await read_outcomes(ws);
    elapsed_ns = now_ns() - t0;
    co_await ws.async_close(websocket::close_code::normal, tuple);
  }
};

}  // namespace drover::bench
