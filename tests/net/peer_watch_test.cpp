// A session's watch over its peer (peer_watch.hpp) on loopback sockets: a
// peer that answers pings is kept; a silent one is dropped, never sooner
// than the limit, however short the limit.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "drover/net/ws_stream.hpp"
#include "peer_watch.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// A server session that only reads, watched with `limit`: how long until
/// its read failed, counted from the handshake.
asio::awaitable<void> watched_session(drover::net::ws_stream& ws, std::chrono::milliseconds limit,
                                      std::chrono::steady_clock::duration& lasted) {
  co_await ws.async_accept(asio::use_awaitable);
  const auto started = std::chrono::steady_clock::now();
  drover::net::peer_watcher<drover::net::ws_stream> watch(ws, websocket::stream_base::timeout::suggested(beast::role_type::server), limit);
  for (;;) {
    beast::flat_buffer buffer;
    auto [ec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
    if (ec) break;
    watch.heard.note();
  }
  lasted = std::chrono::steady_clock::now() - started;
  watch.stop();
  co_await watch.until_stopped();
}

struct watched_pair {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  drover::net::ws_stream server{io};
  std::chrono::steady_clock::duration lasted{};

  /// Runs the watched session against a peer on a thread doing `peer(ws)`.
  template <class Peer>
  void run(std::chrono::milliseconds limit, Peer peer) {
    std::thread client([&, port = acceptor.local_endpoint().port()] {
      asio::io_context client_io;
      websocket::stream<tcp::socket> ws(client_io);
      ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
      ws.handshake("127.0.0.1", "/");
      peer(ws);
    });
    beast::get_lowest_layer(server) = acceptor.accept();
    asio::co_spawn(io, watched_session(server, limit, lasted), asio::detached);
    io.run();
    client.join();
  }
};

}  // namespace

TEST(peer_watch, a_silent_peer_is_dropped_after_the_limit_and_not_before) {
  watched_pair p;
  p.run(100ms, [](websocket::stream<tcp::socket>& ws) {
    std::this_thread::sleep_for(400ms);  // reads nothing: pings go unanswered
    beast::error_code ec;
    ws.next_layer().close(ec);
  });
  EXPECT_GE(p.lasted, 100ms);
  EXPECT_LT(p.lasted, 350ms);
}

TEST(peer_watch, a_limit_of_a_few_milliseconds_still_waits_that_long) {
  // 2 ms: a look every 500 us, not every 0 ms (whole milliseconds divided by four).
  watched_pair p;
  p.run(2ms, [](websocket::stream<tcp::socket>& ws) {
    std::this_thread::sleep_for(100ms);
    beast::error_code ec;
    ws.next_layer().close(ec);
  });
  EXPECT_GE(p.lasted, 2ms);
}

TEST(peer_watch, a_quiet_peer_that_answers_pings_is_kept) {
  watched_pair p;
  p.run(60ms, [](websocket::stream<tcp::socket>& ws) {
    // Reading (which answers pings) for five times the limit, sending nothing.
    std::thread closer([&] {
      std::this_thread::sleep_for(300ms);
      beast::error_code ec;
      ws.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    });
    beast::flat_buffer buffer;
    beast::error_code ec;
    ws.read(buffer, ec);
    closer.join();
  });
  EXPECT_GE(p.lasted, 290ms) << "kept until the peer went away";
}
