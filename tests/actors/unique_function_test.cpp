#include "drover/actors/unique_function.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>

using drover::actors::unique_function;

TEST(unique_function, holds_move_only_callables_inline_and_on_the_heap) {
  int calls = 0;
  auto small = std::make_unique<int>(1);
  unique_function a([&calls, p = std::move(small)] { calls += *p; });
  std::array<char, 200> big{};
  big[0] = 2;
  unique_function b([&calls, big] { calls += big[0]; });
  unique_function moved_a(std::move(a));
  unique_function moved_b(std::move(b));
  EXPECT_FALSE(a);
  EXPECT_FALSE(b);
  moved_a();
  moved_b();
  EXPECT_EQ(calls, 3);
}

TEST(unique_function, destroys_what_it_holds_exactly_once) {
  auto tracker = std::make_shared<int>(0);
  {
    unique_function f([t = tracker] { (void)t; });
    EXPECT_EQ(tracker.use_count(), 2);
    unique_function g(std::move(f));
    EXPECT_EQ(tracker.use_count(), 2);
    g = unique_function([] {});
    EXPECT_EQ(tracker.use_count(), 1);
  }
  EXPECT_EQ(tracker.use_count(), 1);
}
