// The write-coalescing layer under a Beast WebSocket: a burst of small
// messages (buffered, sent together) mixed with large ones (sent directly)
// arrives intact and in order, and the close handshake still completes.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
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
#include <boost/beast/websocket.hpp>

#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"
#include "support/beast_peer.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

using client_ws = drover::net::ws_stream;

/// Message i: its number, then a size that is large for every 50th.
std::string message(int i) {
  const std::size_t size = i % 50 == 0 ? 200'000 : 20 + i % 100;
  std::string m = std::to_string(i) + ":";
  m.resize(size, static_cast<char>('a' + i % 26));
  return m;
}


asio::awaitable<void> write_burst(client_ws& ws, int count) {
  co_await ws.async_handshake("127.0.0.1", "/", asio::use_awaitable);
  ws.binary(true);
  for (int i = 0; i < count; ++i) {
    const auto m = message(i);
    co_await ws.async_write(asio::buffer(m), asio::use_awaitable);
  }
  co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);
}

/// Runs `writer(ws, count)` on a client WebSocket over the layer, against a
/// blocking Beast server on a thread; returns the messages the server read.
template <class Writer>
std::vector<std::string> messages_a_server_reads(Writer writer, int count) {
  asio::io_context server_io;
  tcp::acceptor acceptor(server_io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<std::string> received;
  std::thread server([&] {
    tcp::socket socket(server_io);
    acceptor.accept(socket);
    websocket::stream<tcp::socket> ws(std::move(socket));
    ws.accept();
    for (auto& m : drover::test_support::read_until_closed(ws)) received.push_back(std::move(m.bytes));
  });

  asio::io_context io;
  client_ws ws(io);
  beast::get_lowest_layer(ws).connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  asio::co_spawn(io, writer(ws, count), asio::detached);
  io.run();
  server.join();
  return received;
}

/// The layer over a connected TCP stream, and the plain socket at the other end.
struct layer_and_peer {
  asio::io_context io;
  drover::net::coalescing_stream<tcp::socket> layer{io};
  tcp::socket peer{io};
  layer_and_peer() {
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    beast::get_lowest_layer(layer).connect(acceptor.local_endpoint());
    peer = acceptor.accept();
  }
  /// Runs the layer's loop for `d` (again, after an earlier run).
  void run_a_while(std::chrono::milliseconds d = std::chrono::milliseconds(50)) {
    io.restart();
    io.run_for(d);
  }
  /// The next `n` bytes the peer reads.
  std::string peer_reads(std::size_t n) {
    std::string got(n, '\0');
    asio::read(peer, asio::buffer(got));
    return got;
  }
};

}  // namespace

TEST(coalescing_stream, a_burst_of_small_and_large_messages_arrives_intact_and_in_order) {
  constexpr int count = 1000;
  const auto received = messages_a_server_reads(write_burst, count);
  ASSERT_EQ(received.size(), std::size_t{count});
  for (int i = 0; i < count; ++i) ASSERT_EQ(received[i], message(i)) << "message " << i;
}

namespace {

asio::awaitable<void> write_corked(drover::net::coalescing_stream<tcp::socket>& layer, int count, bool& written) {
  layer.cork();
  for (int i = 0; i < count; ++i) {
    const std::string m = "frame-" + std::to_string(i) + ";";
    co_await asio::async_write(layer, asio::buffer(m), asio::use_awaitable);  // completes at once: gathered
  }
  written = true;
}

}  // namespace

TEST(coalescing_stream, corked_writes_wait_for_uncork_then_leave_together_in_order) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;

  bool written = false;
  asio::co_spawn(io, write_corked(layer, 10, written), asio::detached);
  lp.run_a_while();
  ASSERT_TRUE(written);
  EXPECT_EQ(peer.available(), 0u) << "nothing leaves while corked";

  layer.uncork();
  lp.run_a_while();
  std::string expected;
  for (int i = 0; i < 10; ++i) expected += "frame-" + std::to_string(i) + ";";
  EXPECT_EQ(lp.peer_reads(expected.size()), expected);
}

TEST(coalescing_stream, synchronous_writes_gather_while_corked_and_leave_on_their_own_when_not) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;

  layer.cork();
  std::string expected;
  for (int i = 0; i < 10; ++i) {
    const std::string m = "frame-" + std::to_string(i) + ";";
    EXPECT_EQ(layer.write_some(asio::buffer(m)), m.size());  // gathered, never blocks
    expected += m;
  }
  lp.run_a_while();
  EXPECT_EQ(peer.available(), 0u) << "nothing leaves while corked";
  layer.uncork();
  lp.run_a_while();

  const std::string later = "uncorked;";
  layer.write_some(asio::buffer(later));  // posts its own flush
  lp.run_a_while();
  expected += later;
  ASSERT_EQ(peer.available(), expected.size()) << "the uncorked write left without an uncork";
  EXPECT_EQ(lp.peer_reads(expected.size()), expected);
}

TEST(coalescing_stream, buffers_given_whole_leave_in_order_with_copied_writes_corked_or_not) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;

  std::string expected;
  layer.cork();
  for (int i = 0; i < 20; ++i) {
    const std::string copied = "copied-" + std::to_string(i) + ";";
    ASSERT_TRUE(layer.append(copied));
    std::string given(i * 97, static_cast<char>('a' + i));  // the first one empty
    expected += copied + given;
    ASSERT_TRUE(layer.give(std::move(given)));
  }
  lp.run_a_while();
  EXPECT_EQ(peer.available(), 0u) << "nothing leaves while corked";
  layer.uncork();
  lp.run_a_while(std::chrono::milliseconds(100));

  std::string alone(5000, 'z');
  expected += alone;
  ASSERT_TRUE(layer.give(std::move(alone)));  // uncorked: posts its own flush
  lp.run_a_while(std::chrono::milliseconds(100));
  ASSERT_EQ(peer.available(), expected.size()) << "the uncorked buffer left without an uncork";
  EXPECT_EQ(lp.peer_reads(expected.size()), expected);
}

namespace {

/// Messages written with Beast's synchronous write into the corked layer:
/// whole buffers, and gather lists of two parts (as a record's head and body).
asio::awaitable<void> write_synchronously(client_ws& ws, int count) {
  co_await ws.async_handshake("127.0.0.1", "/", asio::use_awaitable);
  ws.binary(true);
  ws.auto_fragment(false);
  ws.next_layer().cork();
  for (int i = 0; i < count; ++i) {
    const auto m = message(i);
    if (i % 2 == 0) {
      ws.write(asio::buffer(m));
    } else {
      const std::array<asio::const_buffer, 2> parts{asio::buffer(m.data(), m.size() / 2),
                                                    asio::buffer(m.data() + m.size() / 2, m.size() - m.size() / 2)};
      ws.write(parts);
    }
  }
  ws.next_layer().uncork();
  co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);
}

}  // namespace

TEST(coalescing_stream, synchronous_websocket_writes_of_whole_buffers_and_gather_lists_arrive_intact_and_in_order) {
  constexpr int count = 300;
  const auto received = messages_a_server_reads(write_synchronously, count);
  ASSERT_EQ(received.size(), std::size_t{count});
  for (int i = 0; i < count; ++i) ASSERT_EQ(received[i], message(i)) << "message " << i;
}

TEST(coalescing_stream, a_small_read_after_a_full_one_takes_the_whole_burst_in_one_receive) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;
  std::string sent(10'000, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>('a' + i % 26);
  asio::write(peer, asio::buffer(sent));
  auto& socket = beast::get_lowest_layer(layer);
  for (int i = 0; i < 100 && socket.available() < sent.size(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_EQ(socket.available(), sent.size());
  std::string got;
  std::vector<std::size_t> left_in_socket;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::array<char, 1536> buffer;  // Beast's frame buffer asks for this much
        while (got.size() < sent.size()) {
          const auto n = co_await layer.async_read_some(asio::buffer(buffer), asio::use_awaitable);
          got.append(buffer.data(), n);
          left_in_socket.push_back(socket.available());
        }
      },
      asio::detached);
  lp.run_a_while();
  EXPECT_EQ(got, sent);
  ASSERT_GE(left_in_socket.size(), 2u);
  EXPECT_EQ(left_in_socket[0], sent.size() - 1536) << "the first read goes straight in";
  EXPECT_EQ(left_in_socket[1], 0u) << "the second, after one that filled its buffer, takes the rest at once";
}

TEST(coalescing_stream, websocket_messages_of_every_size_read_through_the_layer_arrive_intact_and_in_order) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  // Around Beast's 1536-byte frame buffer, and past the stash's 64 KiB.
  const std::vector<std::size_t> sizes{1, 100, 1530, 1536, 1540, 3000, 7300, 8191, 8192, 20'000, 70'000, 200'000, 5};
  auto body = [](std::size_t i, std::size_t size) {
    std::string m(size, static_cast<char>('a' + i % 26));
    m.replace(0, std::min<std::size_t>(size, 4), std::to_string(i % 10000).substr(0, std::min<std::size_t>(size, 4)));
    return m;
  };
  std::thread writer([&] {
    asio::io_context wio;
    websocket::stream<tcp::socket> ws(wio);
    ws.next_layer().connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
    ws.handshake("127.0.0.1", "/");
    ws.binary(true);
    for (int round = 0; round < 20; ++round)
      for (std::size_t i = 0; i < sizes.size(); ++i) ws.write(asio::buffer(body(round * sizes.size() + i, sizes[i])));
    ws.close(websocket::close_code::normal);
  });
  client_ws ws(io);
  std::vector<std::string> received;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        beast::get_lowest_layer(ws) = co_await acceptor.async_accept(asio::use_awaitable);
        co_await ws.async_accept(asio::use_awaitable);
        for (;;) {
          beast::flat_buffer buffer;
          auto [ec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
          if (ec) break;
          received.push_back(beast::buffers_to_string(buffer.data()));
        }
      },
      asio::detached);
  io.run();
  writer.join();
  ASSERT_EQ(received.size(), 20 * sizes.size());
  for (int round = 0; round < 20; ++round)
    for (std::size_t i = 0; i < sizes.size(); ++i)
      ASSERT_EQ(received[round * sizes.size() + i], body(round * sizes.size() + i, sizes[i])) << "round " << round << " message " << i;
}

TEST(coalescing_stream, a_server_teardown_reads_what_the_peer_still_sends_until_it_closes) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;
  bool done = false;
  drover::net::async_teardown(beast::role_type::server, layer, [&](beast::error_code ec) {
    EXPECT_FALSE(ec) << ec.message();
    done = true;
  });
  asio::write(peer, asio::buffer(std::string(100'000, 'x')));  // still sending after the close frame
  lp.run_a_while();
  EXPECT_FALSE(done) << "the peer has not closed yet";
  std::array<char, 16> b{};
  beast::error_code ec;
  peer.read_some(asio::buffer(b), ec);
  EXPECT_EQ(ec, asio::error::eof) << "our side shut down sending first";
  peer.close();
  lp.run_a_while();
  EXPECT_TRUE(done);
  EXPECT_FALSE(beast::get_lowest_layer(layer).is_open());
}

TEST(coalescing_stream, a_teardown_gives_up_on_a_peer_that_never_closes_after_the_drain_time) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;
  bool done = false;
  const auto started = std::chrono::steady_clock::now();
  drover::net::async_teardown(beast::role_type::server, layer, [&](beast::error_code) { done = true; });
  lp.run_a_while(drover::net::teardown_drain_time + std::chrono::milliseconds(500));
  EXPECT_TRUE(done);
  EXPECT_GE(std::chrono::steady_clock::now() - started, drover::net::teardown_drain_time);
  EXPECT_FALSE(beast::get_lowest_layer(layer).is_open());
}

TEST(coalescing_stream, a_send_bigger_than_the_socket_takes_at_once_leaves_whole_and_in_order) {
  layer_and_peer lp;
  auto& [io, layer, peer] = lp;
  // Buffers given whole and copied writes, far more than the (small)
  // socket buffers take in one send: the rest goes out as the peer reads.
  beast::get_lowest_layer(layer).set_option(asio::socket_base::send_buffer_size(64 * 1024));
  peer.set_option(asio::socket_base::receive_buffer_size(64 * 1024));
  layer.cork();
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    std::string m = "message-" + std::to_string(i) + ";" + std::string(30'000 + 97 * i, static_cast<char>('a' + i % 26));
    expected += m;
    if (i % 3 == 0) {
      layer.give(std::move(m));
    } else {
      layer.write_some(asio::buffer(m));
    }
  }
  layer.uncork();
  EXPECT_GT(expected.size(), 7u << 20);
  std::string got;
  std::atomic<bool> read_all{false};
  std::thread reader([&] {
    got = lp.peer_reads(expected.size());
    read_all = true;
  });
  while (!read_all) lp.run_a_while(std::chrono::milliseconds(5));
  reader.join();
  EXPECT_TRUE(got == expected) << "the bytes arrived out of order or damaged";
  const std::string after = "after;";
  layer.write_some(asio::buffer(after));
  lp.run_a_while();
  EXPECT_EQ(lp.peer_reads(after.size()), after) << "the stream writes on once the big send is done";
}
