#include "drover/core/bytes.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

using namespace drover::core;

TEST(bytes, copies_share_one_buffer) {
  bytes a = bytes::copy_from("hello");
  bytes b = a;
  EXPECT_TRUE(a.same_buffer(b));
  EXPECT_EQ(a.use_count(), 2u);
  EXPECT_EQ(b.view(), "hello");
}

TEST(bytes, adopting_a_string_keeps_its_buffer) {
  std::string text(1000, 'x');
  const char* before = text.data();
  bytes b = bytes::adopt(std::move(text));
  EXPECT_EQ(reinterpret_cast<const char*>(b.data()), before);
  EXPECT_EQ(b.size(), 1000u);
}

TEST(bytes, adopting_with_an_offset_exposes_the_tail_without_a_copy) {
  std::string frame = "HEADERpayload-bytes-of-some-length";
  const char* base = frame.data();
  bytes b = bytes::adopt(std::move(frame), 6);
  EXPECT_EQ(b.view(), "payload-bytes-of-some-length");
  EXPECT_EQ(reinterpret_cast<const char*>(b.data()), base + 6);
  EXPECT_TRUE(bytes::adopt(std::string("abc"), 3).empty());
}

TEST(bytes, slices_share_the_buffer_and_keep_it_alive) {
  std::string message = "[one][two][three]";
  const char* base = message.data();
  bytes one, three;
  {
    bytes whole = bytes::adopt(std::move(message));
    one = whole.slice(1, 3);
    three = whole.slice(11, 100);  // clipped to the end
    EXPECT_EQ(whole.use_count(), 3u);
  }
  EXPECT_EQ(one.view(), "one");
  EXPECT_EQ(reinterpret_cast<const char*>(one.data()), base + 1);
  EXPECT_EQ(three.view(), "three]");
  EXPECT_TRUE(one.slice(3, 1).empty());
  EXPECT_TRUE(one.slice(0, 0).empty());
}

TEST(bytes, a_message_of_hundreds_of_records_slices_each_and_lives_while_any_slice_does) {
  // 300 records cross every size of the message's slice chunks (4, 16, 64, 256).
  constexpr std::size_t records = 300;
  std::string message;
  for (std::size_t i = 0; i < records; ++i) message += "r" + std::to_string(1000 + i);
  std::vector<bytes> slices;
  {
    bytes whole = bytes::adopt(std::move(message));
    for (std::size_t i = 0; i < records; ++i) slices.push_back(whole.slice(i * 5, 5));
    EXPECT_EQ(whole.use_count(), records + 1);
    // Copies share a slice; a slice of a slice still reads the right bytes.
    bytes copy = slices[7];
    EXPECT_TRUE(copy.same_buffer(slices[7]));
    EXPECT_EQ(slices[7].slice(1, 4).view(), "1007");
    EXPECT_EQ(whole.use_count(), records + 1);
  }
  // Released out of order, each still reading its own record until it goes.
  for (std::size_t i = 0; i < records; i += 2) slices[i] = bytes();
  for (std::size_t i = 1; i < records; i += 2) EXPECT_EQ(slices[i].view(), "r" + std::to_string(1000 + i));
  std::thread elsewhere([&] {
    for (std::size_t i = 1; i < records; i += 2) slices[i] = bytes();
  });
  elsewhere.join();
}

TEST(bytes, last_release_frees_and_moves_leave_empty) {
  bytes a = bytes::copy_from("abc");
  {
    bytes b = a;
    EXPECT_EQ(a.use_count(), 2u);
  }
  EXPECT_EQ(a.use_count(), 1u);
  bytes c = std::move(a);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(c.view(), "abc");
  EXPECT_TRUE(bytes::copy_from("").empty());
}
