// A server's and a client's messages written past Beast (write_whole_message): every
// length encoding reaches a Beast client intact, in order with the frames
// Beast writes itself, and nothing is taken once the WebSocket is closed.
#include "frame_writer.hpp"
#include "support/beast_peer.hpp"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "drover/net/coalescing_stream.hpp"
#include "drover/net/ws_stream.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using drover::net::write_whole_message;
using drover::net::writer_role;

namespace {

using server_ws = drover::net::ws_stream;

using drover::test_support::read_message;
using drover::test_support::read_until_closed;

// Each length form of RFC 6455: 7 bits, 16 bits (from 126), 64 bits (past 65,535).
const std::vector<std::size_t> sizes{0, 1, 125, 126, 127, 65'535, 65'536, 200'000};

std::string message_of(std::size_t i, std::size_t size) {
  std::string m(size, '\0');
  for (std::size_t k = 0; k < size; ++k) m[k] = static_cast<char>('a' + (i + k) % 26);
  return m;
}

/// Writes each size's message with `write`, with a frame of Beast's own
/// after each, into the corked stream; then closes and tries once more.
template <class Write>
asio::awaitable<void> write_every_size(server_ws& ws, Write write, bool& refused_after_close, bool& kept_after_close) {
  ws.auto_fragment(false);
  ws.next_layer().cork();
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    auto m = message_of(i, sizes[i]);
    EXPECT_FALSE(write(ws, m)) << "size " << sizes[i];
    ws.text(true);
    ws.write(asio::buffer(std::string("after ") + std::to_string(i)));  // Beast's own frame between ours
  }
  ws.next_layer().uncork();
  co_await ws.async_close(websocket::close_code::normal, asio::use_awaitable);
  std::string late = "late";
  refused_after_close = static_cast<bool>(write(ws, late));
  kept_after_close = late == "late";
}

void expect_every_size(const std::vector<read_message>& received) {
  ASSERT_EQ(received.size(), 2 * sizes.size());
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(received[2 * i].binary);
    EXPECT_EQ(received[2 * i].bytes, message_of(i, sizes[i])) << "size " << sizes[i];
    EXPECT_FALSE(received[2 * i + 1].binary);
    EXPECT_EQ(received[2 * i + 1].bytes, "after " + std::to_string(i));
  }
}

asio::awaitable<void> serve(server_ws& ws, bool& refused_after_close, bool& kept_after_close) {
  co_await ws.async_accept(asio::use_awaitable);
  co_await write_every_size(
      ws, [](server_ws& w, std::string& m) { return write_whole_message(w, m, writer_role::server); }, refused_after_close, kept_after_close);
}

}  // namespace

TEST(frame_writer, server_messages_of_every_length_form_arrive_intact_in_order_with_beast_frames) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<read_message> received;
  std::thread client([&] {
    asio::io_context client_io;
    websocket::stream<tcp::socket> ws(client_io);
    ws.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
    ws.handshake("127.0.0.1", "/");
    received = read_until_closed(ws);
  });
  server_ws ws(acceptor.accept());
  bool refused_after_close = false, kept_after_close = false;
  asio::co_spawn(io, serve(ws, refused_after_close, kept_after_close), asio::detached);
  io.run();
  client.join();
  expect_every_size(received);
  EXPECT_TRUE(refused_after_close);
  EXPECT_TRUE(kept_after_close) << "a message not written is left to its owner";
}

namespace {

asio::awaitable<void> send_as_client(server_ws& ws, std::uint16_t port, bool& refused_after_close, bool& kept_after_close) {
  co_await beast::get_lowest_layer(ws).async_connect({asio::ip::make_address("127.0.0.1"), port}, asio::use_awaitable);
  co_await ws.async_handshake("127.0.0.1", "/", asio::use_awaitable);
  co_await write_every_size(
      ws, [](server_ws& w, std::string& m) { return write_whole_message(w, m, writer_role::client); }, refused_after_close, kept_after_close);
}

}  // namespace

TEST(frame_writer, client_messages_of_every_length_form_are_masked_and_arrive_intact_in_order_with_beast_frames) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<read_message> received;
  std::thread server([&] {
    // Beast's server refuses a client's frame that is not masked (RFC 6455 section 5.1).
    websocket::stream<tcp::socket> ws(acceptor.accept());
    ws.accept();
    received = read_until_closed(ws);
  });
  server_ws ws(io);
  bool refused_after_close = false, kept_after_close = false;
  asio::co_spawn(io, send_as_client(ws, port, refused_after_close, kept_after_close), asio::detached);
  io.run();
  server.join();
  expect_every_size(received);
  EXPECT_TRUE(refused_after_close);
  EXPECT_TRUE(kept_after_close) << "a message not written is left to its owner, unmasked";
}

TEST(frame_writer, masking_twice_with_the_same_key_gives_back_the_bytes_at_every_length) {
  for (std::size_t n = 0; n < 40; ++n) {
    const auto original = message_of(n, n);
    auto bytes = original;
    const std::array<char, 4> key{'\x12', '\x34', '\x56', '\x78'};
    drover::net::mask_in_place(bytes.data(), bytes.size(), key);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(bytes[i], static_cast<char>(original[i] ^ key[i % 4])) << n << " " << i;
    drover::net::mask_in_place(bytes.data(), bytes.size(), key);
    EXPECT_EQ(bytes, original);
  }
}
