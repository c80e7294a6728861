#pragma once
// Dead-peer detection for a WebSocket session, in place of Beast's idle
// timeout. Beast re-arms its idle timer at every message it reads (a timer
// cancelled, put back in the heap, and the cancelled wait's handler run
// later: 4 % of the node's thread with 10,000 runtimes of capacity 1;
// docs/benchmarks.md). Here the session only counts what it hears, and a
// timer of its own looks at the count now and then: after half of `limit`
// in silence the peer gets a ping; after all of it, the connection is closed.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream_base.hpp>

#include "frame_writer.hpp"

namespace drover::net {

/// What a watched session has heard: each message it reads and each
/// control frame (a pong, a ping) counts.
struct peer_heard {
  std::uint64_t count = 0;
  void note() { ++count; }
};

/// Runs until the connection ends (`reading` false; its end also cancels
/// `timer`) or the peer stays silent for `limit`: then the socket is
/// closed, which ends the session's read with an error. It looks every
/// quarter of `limit`: two looks in a row that find nothing new heard mean
/// at least half of `limit` of silence (a ping then), four mean at least
/// all of it. An idle peer that answers is pinged every 3/4 of `limit`.
/// `done` marks the end (writer_end), for the session to wait on before
/// its stream and timer go.
template <class WebSocket>
boost::asio::awaitable<void> watch_peer(WebSocket& ws, boost::asio::steady_timer& timer, const peer_heard& heard,
                                        const bool& reading, std::chrono::milliseconds limit, std::shared_ptr<bool> done) {
  constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  writer_end guard{std::move(done)};
  // In microseconds: a limit of a few milliseconds must not look every 0 ms.
  const auto look_every = std::max(std::chrono::microseconds(1), std::chrono::microseconds(limit) / 4);
  std::uint64_t seen = heard.count;
  int silent_looks = 0;
  for (;;) {
    if (!reading) co_return;  // it ended while a ping was written: the cancel came before this wait
    timer.expires_after(look_every);
    auto [ec] = co_await timer.async_wait(tuple);
    if (ec || !reading) co_return;  // the connection ended
    if (heard.count != seen) {
      seen = heard.count, silent_looks = 0;
      continue;
    }
    ++silent_looks;
    if (silent_looks >= 4) {
      boost::beast::error_code ignored;
      boost::beast::get_lowest_layer(ws).close(ignored);
      co_return;
    }
    if (silent_looks == 2) {
      auto [pec] = co_await ws.async_ping({}, tuple);
      if (pec) co_return;
    }
  }
}

/// A session's watch over its peer, from the end of its handshake to the
/// end of its reads. It turns Beast's own idle timeout off (the handshake
/// and closing timeouts stay) and counts control frames through Beast's
/// control callback; the session notes each message it reads
/// (`heard.note()`), calls `stop` when its reads end (which also takes the
/// callback back), and waits (`until_stopped`) before its stream goes.
template <class WebSocket>
class peer_watcher {
 public:
  peer_heard heard;

  peer_watcher(WebSocket& ws, boost::beast::websocket::stream_base::timeout timeouts, std::chrono::milliseconds limit)
      : ws_(ws), timer_(ws.get_executor()) {
    timeouts.idle_timeout = boost::beast::websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws.set_option(timeouts);
    ws.control_callback([this](boost::beast::websocket::frame_type, boost::beast::string_view) { heard.note(); });
    boost::asio::co_spawn(ws.get_executor(), watch_peer(ws, timer_, heard, reading_, limit, done_), boost::asio::detached);
  }
  void stop() {
    reading_ = false;
    timer_.cancel();
    ws_.control_callback();
  }
  boost::asio::awaitable<void> until_stopped() { co_await wait_for_writer(done_); }

 private:
  WebSocket& ws_;
  bool reading_ = true;
  boost::asio::steady_timer timer_;
  std::shared_ptr<bool> done_ = std::make_shared<bool>(false);
};

}  // namespace drover::net
