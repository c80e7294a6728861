// An io_poster runs work at once on its loop's own thread (an actor turn the
// gateway hosts) and posts it from anywhere else; closed, it does neither.
#include "io_poster.hpp"

#include <gtest/gtest.h>

#include <thread>

#include <boost/asio/io_context.hpp>

using drover::net::io_poster;
namespace asio = boost::asio;

namespace {

/// Marks the calling thread as `io`'s loop thread for the scope.
struct on_loop_thread {
  explicit on_loop_thread(asio::io_context& io) { io_poster::current_loop = &static_cast<asio::execution_context&>(io); }
  ~on_loop_thread() { io_poster::current_loop = nullptr; }
};

}  // namespace

TEST(io_poster, on_its_loops_thread_work_runs_at_once) {
  asio::io_context io;
  io_poster poster(io.get_executor());
  on_loop_thread mark(io);
  int ran = 0;
  poster.run_here_or_post([&] { ++ran; });
  EXPECT_EQ(ran, 1) << "no trip through the loop's queue";
  EXPECT_EQ(io.poll(), 0u);
}

TEST(io_poster, from_another_thread_work_waits_for_the_loop) {
  asio::io_context io;
  io_poster poster(io.get_executor());
  int ran = 0;
  std::thread([&] { poster.run_here_or_post([&] { ++ran; }); }).join();
  EXPECT_EQ(ran, 0);
  EXPECT_EQ(io.poll(), 1u);
  EXPECT_EQ(ran, 1);
}

TEST(io_poster, another_loops_thread_posts_too) {
  asio::io_context io, other;
  io_poster poster(io.get_executor());
  on_loop_thread mark(other);
  int ran = 0;
  poster.run_here_or_post([&] { ++ran; });
  EXPECT_EQ(ran, 0);
  io.poll();
  EXPECT_EQ(ran, 1);
}

TEST(io_poster, a_closed_poster_neither_runs_nor_posts) {
  asio::io_context io;
  io_poster poster(io.get_executor());
  poster.close();
  int ran = 0;
  {
    on_loop_thread mark(io);
    poster.run_here_or_post([&] { ++ran; });
  }
  poster.run_here_or_post([&] { ++ran; });
  poster.post([&] { ++ran; });
  io.poll();
  EXPECT_EQ(ran, 0);
}
