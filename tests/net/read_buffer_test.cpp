// The read buffers of a connection (read_buffer.hpp): reserved from the last message, and
// never much bigger than what a kept message holds.
#include "read_buffer.hpp"

#include <gtest/gtest.h>

using namespace drover::net;

namespace {
/// Buffers whose last message had `size` bytes.
read_buffers after_a_message_of(std::size_t size) {
  read_buffers buffers;
  std::string message(size, 'm');
  buffers.fit(message);
  return buffers;
}
}  // namespace

TEST(read_buffer, the_next_is_reserved_at_the_last_message_size_up_to_64_kib) {
  EXPECT_GE(after_a_message_of(3000).next().capacity(), 3000u);
  EXPECT_LT(after_a_message_of(10u << 20).next().capacity(), 65u * 1024);  // a huge message does not make every next one huge
  EXPECT_TRUE(after_a_message_of(3000).next().empty());
}

TEST(read_buffer, a_small_message_in_a_big_buffer_is_moved_into_one_of_its_size) {
  auto buffers = after_a_message_of(64 * 1024);
  std::string message = buffers.next();
  message.assign(100, 'x');
  buffers.fit(message);
  EXPECT_LE(message.capacity(), 2 * message.size() + 4096);
  EXPECT_EQ(message, std::string(100, 'x'));
}

TEST(read_buffer, a_message_filling_most_of_its_buffer_stays_where_it_is) {
  auto buffers = after_a_message_of(40'000);
  std::string message = buffers.next();
  message.assign(30'000, 'y');
  const char* before = message.data();
  buffers.fit(message);
  EXPECT_EQ(message.data(), before);
}
