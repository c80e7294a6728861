// The write-coalescing layer under a Beast WebSocket: a burst of small
// messages (buffered, sent together) mixed with large ones (sent directly)
// arrives intact and in order, and the close handshake still completes.
#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "drover/net/coalescing_stream.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

/// Message i: its number, then a size that is large for every 50th.
std::string message(int i) {
  const std::size_t size = i % 50 == 0 ? 200'000 : 20 + i % 100;
  std::string m = std::to_string(i) + ":";
  m.resize(size, static_cast<char>('a' + i % 26));
  return m;
}


asio::awaitable<void> write_burst(websocket::stream<drover::net::coalescing_stream<beast::tcp_stream>>& ws, int count) {
  co_await ws.async_handshake("127.0.0.1", "/", asio::use_awaitable);  // the layer is async only
  ws.binary(true);
  for (int i = 0; i < count; ++i) {
    const auto m = message(i);
    co_await ws.async_write(asio::buffer(m), asio::use_awaitable);
  }
  co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);
}

}  // namespace

TEST(coalescing_stream, a_burst_of_small_and_large_messages_arrives_intact_and_in_order) {
  constexpr int count = 1000;
  asio::io_context server_io;
  tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<std::string> received;
  std::thread server([&] {
    tcp::socket socket(server_io);
    acceptor.accept(socket);
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.accept();
    for (;;) {
      beast::flat_buffer buffer;
      beast::error_code ec;
      ws.read(buffer, ec);
      if (ec) break;
      received.push_back(beast::buffers_to_string(buffer.data()));
    }
  });

  asio::io_context io;
  websocket::stream<drover::net::coalescing_stream<beast::tcp_stream>> ws(io);
  beast::get_lowest_layer(ws).connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  asio::co_spawn(io, write_burst(ws, count), asio::detached);
  io.run();
  server.join();

  ASSERT_EQ(received.size(), std::size_t{count});
  for (int i = 0; i < count; ++i) ASSERT_EQ(received[i], message(i)) << "message " << i;
}

namespace {

asio::awaitable<void> write_corked(drover::net::coalescing_stream<beast::tcp_stream>& layer, int count, bool& written) {
  layer.cork();
  for (int i = 0; i < count; ++i) {
    const std::string m = "frame-" + std::to_string(i) + ";";
    co_await asio::async_write(layer, asio::buffer(m), asio::use_awaitable);  // completes at once: gathered
  }
  written = true;
}

}  // namespace

TEST(coalescing_stream, corked_writes_wait_for_uncork_then_leave_together_in_order) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  drover::net::coalescing_stream<beast::tcp_stream> layer(io);
  beast::get_lowest_layer(layer).connect(acceptor.local_endpoint());
  tcp::socket peer = acceptor.accept();

  bool written = false;
  asio::co_spawn(io, write_corked(layer, 10, written), asio::detached);
  io.run_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(written);
  EXPECT_EQ(peer.available(), 0u) << "nothing leaves while corked";

  layer.uncork();
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += "frame-" + std::to_string(i) + ";";
  std::string got(expected.size(), '\0');
  asio::read(peer, asio::buffer(got));
  EXPECT_EQ(got, expected);
}
