#include "drover/core/intrusive_timer_wheel.hpp"

#include <gtest/gtest.h>

#include <deque>

using namespace drover::core;
using namespace std::chrono_literals;

namespace {
struct owner {
  int tag = 0;
  timer_hook<owner> hook;
};
using wheel = intrusive_timer_wheel<owner, &owner::hook>;
time_point at(duration d) { return time_zero + d; }
std::vector<int> fire(wheel& w, time_point now) {
  std::vector<int> fired;
  w.advance(now, [&](owner& o) { fired.push_back(o.tag); });
  return fired;
}
}  // namespace

TEST(intrusive_timer_wheel, never_fires_early_and_at_most_a_tick_late) {
  wheel w(1ms, 64, time_zero);
  owner a{1};
  w.schedule(a, at(1500us));
  EXPECT_TRUE(fire(w, at(1499us)).empty());
  EXPECT_EQ(fire(w, at(2ms)), std::vector<int>{1});
  EXPECT_FALSE(wheel::armed(a));
}

TEST(intrusive_timer_wheel, cancel_leaves_nothing_behind) {
  wheel w(1ms, 64, time_zero);
  std::deque<owner> owners;
  for (int i = 0; i < 10'000; ++i) {
    owners.push_back(owner{i});
    w.schedule(owners.back(), at(30s));
    w.cancel(owners.back());
  }
  EXPECT_EQ(w.size(), 0u) << "cancelled timers must not accumulate";
  EXPECT_FALSE(w.next_due());
  EXPECT_TRUE(fire(w, at(60s)).empty());
}

TEST(intrusive_timer_wheel, later_rotations_wait_and_overdue_fire_next) {
  wheel w(1ms, 64, at(5ms));
  owner late{1}, next_round{2}, overdue{3};
  w.schedule(late, at(10ms));
  w.schedule(next_round, at(74ms));  // same slot as 10 ms, one rotation later
  w.schedule(overdue, at(1ms));
  EXPECT_EQ(w.next_due(), at(5ms));
  EXPECT_EQ(fire(w, at(5ms)), std::vector<int>{3});
  EXPECT_EQ(fire(w, at(10ms)), std::vector<int>{1});
  EXPECT_TRUE(fire(w, at(73ms)).empty());
  EXPECT_EQ(fire(w, at(74ms)), std::vector<int>{2});
}

TEST(intrusive_timer_wheel, an_owner_may_be_rearmed_while_firing) {
  wheel w(1ms, 64, time_zero);
  owner a{1};
  w.schedule(a, at(1ms));
  int fired = 0;
  w.advance(at(1ms), [&](owner& o) {
    ++fired;
    w.schedule(o, at(3ms));
  });
  EXPECT_EQ(fired, 1);
  EXPECT_TRUE(wheel::armed(a));
  EXPECT_EQ(fire(w, at(3ms)), std::vector<int>{1});
}
