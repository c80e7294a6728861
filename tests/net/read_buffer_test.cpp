// The read buffers of a connection (read_buffer.hpp): reserved from the last message, and
// never much bigger than what a kept message holds.
#include "read_buffer.hpp"

#include <gtest/gtest.h>

using namespace drover::net;

TEST(read_buffer, the_next_is_reserved_at_the_last_message_size_up_to_64_kib) {
  EXPECT_GE(next_read_buffer(3000).capacity(), 3000u);
  EXPECT_LT(next_read_buffer(10u << 20).capacity(), 65u * 1024);  // a huge message does not make every next one huge
  EXPECT_TRUE(next_read_buffer(3000).empty());
}

TEST(read_buffer, a_small_message_in_a_big_buffer_is_moved_into_one_of_its_size) {
  std::string message = next_read_buffer(64 * 1024);
  message.assign(100, 'x');
  fit_read_buffer(message);
  EXPECT_LE(message.capacity(), 2 * message.size() + 4096);
  EXPECT_EQ(message, std::string(100, 'x'));
}

TEST(read_buffer, a_message_filling_most_of_its_buffer_stays_where_it_is) {
  std::string message = next_read_buffer(40'000);
  message.assign(30'000, 'y');
  const char* before = message.data();
  fit_read_buffer(message);
  EXPECT_EQ(message.data(), before);
}
