// hangup_watch.hpp on loopback sockets: a peer that closes or resets its
// connection is noticed; one that sends a request is not taken for gone,
// and the request is still there to read; a watch that ended never calls.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "hangup_watch.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// A connected pair on 127.0.0.1: `server` is the watched side.
struct socket_pair {
  asio::io_context io;
  tcp::socket server{io}, client{io};
  socket_pair() {
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
  /// Runs the loop for a while: what is ready by then has run.
  void settle() {
    io.restart();
    io.run_for(100ms);
  }
};

}  // namespace

TEST(hangup_watch, a_peer_that_closes_or_resets_its_connection_is_noticed) {
  for (const bool reset : {false, true}) {
    SCOPED_TRACE(reset ? "reset" : "closed");
    socket_pair p;
    int calls = 0;
    drover::net::hangup_watch watch(p.server, [&] { ++calls; });
    p.settle();
    EXPECT_EQ(calls, 0) << "a quiet peer is not gone";
    if (reset) p.client.set_option(asio::socket_base::linger(true, 0));  // close sends a reset
    EXPECT_FALSE(watch.hung_up());
    p.client.close();
    p.settle();
    EXPECT_EQ(calls, 1);
    EXPECT_TRUE(watch.hung_up());
  }
}

TEST(hangup_watch, a_peer_that_sends_more_is_not_gone_and_what_it_sent_stays_to_be_read) {
  socket_pair p;
  int calls = 0;
  drover::net::hangup_watch watch(p.server, [&] { ++calls; });
  asio::write(p.client, asio::buffer(std::string("GET / HTTP/1.1\r\n\r\n")));
  p.settle();
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(watch.hung_up());
  std::string got(18, '\0');
  asio::read(p.server, asio::buffer(got));
  EXPECT_EQ(got, "GET / HTTP/1.1\r\n\r\n");
}

TEST(hangup_watch, a_watch_that_ended_never_calls) {
  socket_pair p;
  int calls = 0;
  std::optional<drover::net::hangup_watch> watch;
  watch.emplace(p.server, [&] { ++calls; });
  watch.reset();
  p.client.close();
  p.settle();
  EXPECT_EQ(calls, 0);
}
