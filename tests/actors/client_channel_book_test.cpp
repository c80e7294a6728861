// A client channel's books: the window throttles, an ordered channel holds
// outcomes back until every earlier one went out.
#include "drover/actors/client_channel.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using drover::actors::client_channel;

TEST(client_channel, a_full_window_has_no_room_until_an_outcome_comes) {
  client_channel<std::string> ch(2, false);
  EXPECT_EQ(ch.submitted(), 0u);
  EXPECT_EQ(ch.submitted(), 1u);
  EXPECT_FALSE(ch.has_room());
  std::vector<std::string> out;
  ch.finished(1, "b", [&](std::string&& s) { out.push_back(s); });
  EXPECT_TRUE(ch.has_room());
  EXPECT_EQ(out, std::vector<std::string>{"b"}) << "unordered: delivered as it comes";
  EXPECT_EQ(ch.next_seq(), 2u);
}

TEST(client_channel, an_ordered_channel_delivers_in_submission_order) {
  client_channel<std::string> ch(10, true);
  for (int i = 0; i < 4; ++i) ch.submitted();
  std::vector<std::string> out;
  auto deliver = [&](std::string&& s) { out.push_back(s); };
  ch.finished(2, "c", deliver);
  ch.finished(1, "b", deliver);
  EXPECT_TRUE(out.empty()) << "0 is still running";
  EXPECT_EQ(ch.held_back(), 2u);
  EXPECT_EQ(ch.outstanding(), 2u) << "held-back outcomes no longer count against the window";
  ch.finished(0, "a", deliver);
  EXPECT_EQ(out, (std::vector<std::string>{"a", "b", "c"}));
  ch.finished(3, "d", deliver);
  EXPECT_EQ(out.back(), "d");
  EXPECT_EQ(ch.held_back(), 0u);
}
