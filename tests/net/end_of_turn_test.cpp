// The I/O loop's end-of-turn work (end_of_turn.hpp): what a turn deferred
// runs once, and a session's queued frames are written there once per turn,
// or its writer is woken when the loop cannot write for it.
#include "end_of_turn.hpp"

#include <gtest/gtest.h>

#include <memory>

#include <boost/asio/io_context.hpp>

using namespace drover::net;

namespace {

struct session : std::enable_shared_from_this<session> {
  writer_link writer;
  int writes = 0;
};

/// A session whose connection lets the loop write for it.
std::shared_ptr<session> attached_session() {
  auto s = std::make_shared<session>();
  s->writer.write_now = [raw = s.get()] { ++raw->writes; };
  return s;
}

/// The loop's end of turn installed for the test's scope.
struct loop_turn {
  end_of_turn turn;
  loop_turn() { end_of_turn::current = &turn; }
  ~loop_turn() { end_of_turn::current = nullptr; }
};

}  // namespace

TEST(end_of_turn, runs_what_was_deferred_once_including_what_that_defers) {
  end_of_turn turn;
  std::vector<int> ran;
  turn.defer([&] {
    ran.push_back(1);
    turn.defer([&] { ran.push_back(2); });
  });
  EXPECT_TRUE(turn.run());
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
  EXPECT_FALSE(turn.run()) << "nothing is run twice";
}

TEST(end_of_turn, paced_work_runs_a_share_per_call_oldest_first_and_what_it_defers_waits_behind_the_rest) {
  end_of_turn turn;
  std::vector<int> ran;
  for (int i = 0; i < 5; ++i)
    turn.defer_paced([&ran, &turn, i] {
      ran.push_back(i);
      // A session's cancel deferred while its task is still paced goes behind it.
      if (i == 0) turn.defer_paced([&ran] { ran.push_back(10); });
    });
  EXPECT_TRUE(turn.run_paced(2));
  EXPECT_EQ(ran, (std::vector<int>{0, 1})) << "no more than the share, oldest first";
  EXPECT_TRUE(turn.run_paced(2));
  EXPECT_TRUE(turn.run_paced(2));
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4, 10}));
  EXPECT_FALSE(turn.run_paced(2)) << "nothing is run twice";
}

TEST(end_of_turn, frames_queued_in_a_turn_are_written_once_at_its_end) {
  loop_turn loop;
  auto s = attached_session();
  for (int i = 0; i < 5; ++i) request_write(*s, s->writer, false);
  EXPECT_EQ(s->writes, 0) << "nothing is written before the turn ends";
  loop.turn.run();
  EXPECT_EQ(s->writes, 1);
  request_write(*s, s->writer, false);
  loop.turn.run();
  EXPECT_EQ(s->writes, 2) << "the next turn writes again";
}

TEST(end_of_turn, a_session_gone_before_the_turn_ends_is_not_written) {
  loop_turn loop;
  auto s = attached_session();
  int writes_after = 0;
  s->writer.write_now = [&] { ++writes_after; };
  request_write(*s, s->writer, false);
  s.reset();
  loop.turn.run();
  EXPECT_EQ(writes_after, 0);
}

TEST(end_of_turn, a_connection_ended_before_the_turn_ends_is_not_written) {
  loop_turn loop;
  auto s = attached_session();
  request_write(*s, s->writer, false);
  s->writer = {};  // the connection ended: no stream to write to
  loop.turn.run();
  EXPECT_EQ(s->writes, 0);
}

TEST(end_of_turn, the_writer_is_woken_off_the_loop_while_closing_or_without_a_connection_writing) {
  boost::asio::io_context io;
  boost::asio::steady_timer wake(io);
  int woken = 0;
  auto parked_writer = [&] {
    wake.expires_at(boost::asio::steady_timer::time_point::max());
    wake.async_wait([&](boost::system::error_code ec) { woken += ec == boost::asio::error::operation_aborted; });
  };
  auto s = attached_session();
  s->writer.wake = &wake;

  parked_writer();
  request_write(*s, s->writer, false);  // no end_of_turn on this thread: not the loop's
  io.run();
  EXPECT_EQ(woken, 1);

  loop_turn loop;
  parked_writer();
  io.restart();
  request_write(*s, s->writer, true);  // closing: the writer writes, then closes
  io.run();
  EXPECT_EQ(woken, 2);

  parked_writer();
  io.restart();
  s->writer.write_now = nullptr;  // the connection does not let the loop write for it
  request_write(*s, s->writer, false);
  io.run();
  EXPECT_EQ(woken, 3);
  loop.turn.run();
  EXPECT_EQ(s->writes, 0);
}

TEST(end_of_turn, a_lazy_write_waits_for_run_lazy_and_happens_once) {
  loop_turn loop;
  auto s = attached_session();
  request_write(*s, s->writer, false, true);
  request_write(*s, s->writer, false, true);
  EXPECT_FALSE(loop.turn.run()) << "nothing eager was deferred";
  EXPECT_EQ(s->writes, 0);
  ASSERT_TRUE(loop.turn.has_lazy());
  loop.turn.run_lazy();
  EXPECT_EQ(s->writes, 1) << "two requests, one write";
  EXPECT_FALSE(loop.turn.has_lazy());
  request_write(*s, s->writer, false, true);
  loop.turn.run_lazy();
  EXPECT_EQ(s->writes, 2) << "a write requested after the last one is due again";
}

TEST(end_of_turn, an_eager_request_makes_a_lazy_write_due_at_the_end_of_the_turn) {
  loop_turn loop;
  auto s = attached_session();
  request_write(*s, s->writer, false, true);  // an outcome
  request_write(*s, s->writer, false);        // an error frame: may not wait
  loop.turn.run();
  EXPECT_EQ(s->writes, 1) << "the eager write takes the waiting bytes along";
  loop.turn.run_lazy();
  EXPECT_EQ(s->writes, 1) << "the lazy write finds nothing left to do";
  request_write(*s, s->writer, false);
  request_write(*s, s->writer, false, true);  // already due at the end of the turn: stays so
  loop.turn.run();
  EXPECT_EQ(s->writes, 2);
  EXPECT_FALSE(s->writer.write_due);
}
