#include "pending_submits.hpp"

#include <gtest/gtest.h>

using namespace drover::net;

TEST(pending_submits, an_entry_is_found_by_its_tag_until_taken) {
  pending_submits p;
  const auto a = p.add({1, 10, 0, 0});
  const auto b = p.add({2, 20, 5, 99});
  EXPECT_NE(a, b);
  EXPECT_EQ(p[b].ref, 20u);
  EXPECT_EQ(p[b].follows, 99u);
  const auto taken = p.take(a);
  EXPECT_EQ(taken.channel, 1u);
  EXPECT_EQ(taken.ref, 10u);
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(p[b].seq, 5u) << "taking one entry leaves the others";
}

TEST(pending_submits, a_freed_tag_is_given_again_and_the_table_does_not_grow) {
  pending_submits p;
  std::vector<drover::core::observer_tag> tags;
  for (std::uint64_t i = 0; i < 100; ++i) tags.push_back(p.add({0, i, i, 0}));
  for (std::size_t i = 0; i < tags.size(); i += 2) p.take(tags[i]);
  EXPECT_EQ(p.size(), 50u);
  for (std::uint64_t i = 0; i < 50; ++i) {
    const auto t = p.add({0, 1000 + i, 0, 0});
    EXPECT_LT(t, 100u) << "a freed slot, not a new one";
    EXPECT_EQ(p[t].ref, 1000 + i);
  }
  for (std::size_t i = 1; i < tags.size(); i += 2) EXPECT_EQ(p[tags[i]].ref, i) << "the entries never taken are intact";
  EXPECT_EQ(p.size(), 100u);
}
