#include "drover/core/lease_table.hpp"

#include <gtest/gtest.h>

#include <deque>

using namespace drover::core;
using namespace std::chrono_literals;

namespace {
task_record& make(std::deque<task_record>& store, std::uint64_t id) {
  auto& t = store.emplace_back();
  t.id = task_id{id};
  return t;
}
void lease(lease_table& table, task_record& t, std::uint32_t consumer, time_point deadline) {
  table.grant(t, consumer, deadline);
  t.state = task_state::leased;
}
}  // namespace

TEST(lease_table, a_stale_lease_is_rejected) {
  std::deque<task_record> store;
  lease_table table(1ms, time_zero);
  auto& t = make(store, 1);
  lease(table, t, 0, time_zero + 1s);
  const lease_id first = t.lease;
  EXPECT_TRUE(lease_table::check(t, 0, first));
  table.release(t);
  t.state = task_state::queued;
  lease(table, t, 1, time_zero + 2s);
  EXPECT_EQ(lease_table::check(t, 0, first).code(), errc::stale_lease);
  EXPECT_EQ(lease_table::check(t, 0, t.lease).code(), errc::stale_lease) << "right lease, wrong consumer";
  EXPECT_TRUE(lease_table::check(t, 1, t.lease));
}

TEST(lease_table, expired_deadlines_are_reported_once_passed) {
  std::deque<task_record> store;
  lease_table table(1ms, time_zero);
  lease(table, make(store, 1), 0, time_zero + 10ms);
  lease(table, make(store, 2), 0, time_zero + 20ms);
  std::vector<std::uint64_t> expired;
  auto collect = [&](task_record& t) {
    expired.push_back(t.id.value);
    table.release(t);
  };
  table.expire(time_zero + 9ms, collect);
  EXPECT_TRUE(expired.empty());
  table.expire(time_zero + 15ms, collect);
  EXPECT_EQ(expired, std::vector<std::uint64_t>{1});
  table.expire(time_zero + 20ms, collect);
  EXPECT_EQ(expired, (std::vector<std::uint64_t>{1, 2}));
}

TEST(lease_table, departure_releases_all_leases_of_that_consumer_only) {
  std::deque<task_record> store;
  lease_table table(1ms, time_zero);
  for (std::uint64_t i = 1; i <= 5; ++i) lease(table, make(store, i), i % 2, time_zero + 1s);
  EXPECT_EQ(table.held_by(1), 3u);
  std::vector<std::uint64_t> released;
  table.release_all(1, [&](task_record& t) { released.push_back(t.id.value); });
  EXPECT_EQ(released, (std::vector<std::uint64_t>{1, 3, 5}));
  EXPECT_EQ(table.held_by(1), 0u);
  EXPECT_EQ(table.held_by(0), 2u);
  EXPECT_EQ(table.active(), 2u);
}

TEST(lease_table, lease_ids_are_unique_fencing_tokens) {
  std::deque<task_record> store;
  lease_table table(1ms, time_zero);
  auto& a = make(store, 1);
  auto& b = make(store, 2);
  lease(table, a, 0, time_zero + 1s);
  lease(table, b, 0, time_zero + 1s);
  EXPECT_NE(a.lease, b.lease);
  EXPECT_LT(a.lease, b.lease);
}
