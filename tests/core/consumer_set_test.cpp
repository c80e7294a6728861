#include "drover/core/consumer_set.hpp"

#include <gtest/gtest.h>

#include <map>
#include <vector>

using namespace drover::core;

TEST(consumer_set, round_robin_takes_turns) {
  consumer_set set(balance_policy::round_robin);
  std::vector<subscription> subs(3);
  for (std::uint32_t i = 0; i < 3; ++i) {
    subs[i].consumer = i;
    set.insert(subs[i], 0);
  }
  std::vector<std::uint32_t> picked;
  for (int i = 0; i < 6; ++i) picked.push_back(set.pick()->consumer);
  EXPECT_EQ(picked, (std::vector<std::uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(consumer_set, least_loaded_picks_the_lowest_load) {
  consumer_set set(balance_policy::least_loaded);
  std::vector<subscription> subs(3);
  const std::uint32_t loads[] = {5, 1, 3};
  for (std::uint32_t i = 0; i < 3; ++i) {
    subs[i].consumer = i;
    set.insert(subs[i], loads[i]);
  }
  EXPECT_EQ(set.pick()->consumer, 1u);
  set.set_load(subs[1], 4);
  EXPECT_EQ(set.pick()->consumer, 2u);
  set.set_load(subs[0], 0);
  EXPECT_EQ(set.pick()->consumer, 0u);
}

TEST(consumer_set, joins_and_leaves_keep_picks_balanced_among_ten_thousand) {
  consumer_set set(balance_policy::least_loaded);
  std::vector<subscription> subs(10'000);
  std::vector<std::uint32_t> load(subs.size(), 0);
  for (std::uint32_t i = 0; i < subs.size(); ++i) {
    subs[i].consumer = i;
    set.insert(subs[i], 0);
  }
  for (std::uint32_t i = 0; i < subs.size(); i += 3) set.erase(subs[i]);
  for (int round = 0; round < 20'000; ++round) {
    subscription* s = set.pick();
    ASSERT_NE(s, nullptr);
    ASSERT_NE(s->consumer % 3, 0u) << "picked a consumer that left";
    set.set_load(*s, ++load[s->consumer]);
  }
  std::uint32_t lo = UINT32_MAX, hi = 0;
  for (std::uint32_t i = 0; i < subs.size(); ++i) {
    if (i % 3 == 0) continue;
    lo = std::min(lo, load[i]);
    hi = std::max(hi, load[i]);
  }
  EXPECT_LE(hi - lo, 1u) << "least-loaded must spread work evenly";
}

TEST(consumer_set, empty_set_picks_nothing) {
  consumer_set set(balance_policy::least_loaded);
  EXPECT_EQ(set.pick(), nullptr);
  subscription s;
  set.insert(s, 3);
  set.erase(s);
  EXPECT_EQ(set.pick(), nullptr);
  EXPECT_TRUE(set.empty());
}
