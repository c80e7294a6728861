#include "drover/core/backoff.hpp"

#include <gtest/gtest.h>

using namespace drover::core;
using namespace std::chrono_literals;

TEST(backoff, grows_exponentially_without_jitter) {
  backoff_policy p{100ms, 10s, 2.0, 0.0};
  EXPECT_EQ(backoff_delay(p, 2, 0.0), 100ms);
  EXPECT_EQ(backoff_delay(p, 3, 0.0), 200ms);
  EXPECT_EQ(backoff_delay(p, 4, 0.0), 400ms);
}

TEST(backoff, is_capped_at_max_even_for_huge_attempts) {
  backoff_policy p{100ms, 10s, 2.0, 0.0};
  EXPECT_EQ(backoff_delay(p, 20, 0.0), 10s);
  EXPECT_EQ(backoff_delay(p, 1000, 0.0), 10s);
}

TEST(backoff, jitter_shortens_within_its_fraction) {
  backoff_policy p{1s, 10s, 2.0, 0.5};
  EXPECT_EQ(backoff_delay(p, 2, 0.0), 1s);
  EXPECT_EQ(backoff_delay(p, 2, 0.5), 750ms);
  EXPECT_GT(backoff_delay(p, 2, 0.999), 500ms - 1ms);
}

TEST(backoff, same_seed_gives_same_delays) {
  backoff_policy p{};
  rng a(42), b(42);
  for (std::uint32_t attempt = 2; attempt < 10; ++attempt) EXPECT_EQ(backoff_delay(p, attempt, a), backoff_delay(p, attempt, b));
}

TEST(backoff, rejects_inconsistent_policies) {
  EXPECT_FALSE((backoff_policy{2s, 1s, 2.0, 0.0}.valid()));
  EXPECT_FALSE((backoff_policy{1s, 2s, 0.5, 0.0}.valid()));
  EXPECT_FALSE((backoff_policy{1s, 2s, 2.0, 1.5}.valid()));
}
