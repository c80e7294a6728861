#include "drover/core/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace drover::core;
using namespace std::chrono_literals;

namespace {
struct entry {
  time_point due;
  int tag;
};
time_point at(duration d) { return time_zero + d; }
std::vector<int> fire(timer_wheel<entry>& w, time_point now) {
  std::vector<int> fired;
  w.advance(now, [&](const entry& e) { fired.push_back(e.tag); });
  std::sort(fired.begin(), fired.end());
  return fired;
}
}  // namespace

TEST(timer_wheel, never_fires_early) {
  timer_wheel<entry> w(1ms, 64, time_zero);
  w.schedule({at(1500us), 1});
  EXPECT_TRUE(fire(w, at(1ms)).empty());
  EXPECT_TRUE(fire(w, at(1499us)).empty());
  EXPECT_EQ(fire(w, at(2ms)), std::vector<int>{1});
  EXPECT_TRUE(w.empty());
}

TEST(timer_wheel, entries_beyond_one_rotation_wait_for_their_round) {
  timer_wheel<entry> w(1ms, 64, time_zero);
  w.schedule({at(10ms), 1});
  w.schedule({at(74ms), 2});  // same slot, next rotation
  EXPECT_EQ(fire(w, at(10ms)), std::vector<int>{1});
  EXPECT_TRUE(fire(w, at(73ms)).empty());
  EXPECT_EQ(fire(w, at(74ms)), std::vector<int>{2});
}

TEST(timer_wheel, a_long_jump_fires_everything_due) {
  timer_wheel<entry> w(1ms, 64, time_zero);
  for (int i = 1; i <= 300; ++i) w.schedule({at(i * 1ms), i});
  EXPECT_EQ(fire(w, at(1s)).size(), 300u);
  EXPECT_TRUE(w.empty());
}

TEST(timer_wheel, past_deadlines_fire_on_next_advance) {
  timer_wheel<entry> w(1ms, 64, at(5ms));
  w.schedule({at(1ms), 7});
  EXPECT_EQ(w.next_due(), at(5ms));
  EXPECT_EQ(fire(w, at(5ms)), std::vector<int>{7});
}

TEST(timer_wheel, next_due_is_a_lower_bound_of_the_earliest_entry) {
  timer_wheel<entry> w(1ms, 64, time_zero);
  EXPECT_FALSE(w.next_due());
  w.schedule({at(30ms), 1});
  w.schedule({at(12ms), 2});
  EXPECT_EQ(w.next_due(), at(12ms));
  fire(w, at(12ms));
  EXPECT_EQ(w.next_due(), at(30ms));
}
