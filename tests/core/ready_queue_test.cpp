#include "drover/core/ready_queue.hpp"

#include <gtest/gtest.h>

#include <deque>

using namespace drover::core;

namespace {
task_record& make(std::deque<task_record>& store, std::uint64_t id, std::uint8_t priority) {
  auto& t = store.emplace_back();
  t.id = task_id{id};
  t.priority = priority;
  return t;
}
}  // namespace

TEST(ready_queue, highest_priority_first_and_fifo_within_a_priority) {
  std::deque<task_record> store;
  ready_queue q;
  q.push(make(store, 1, 0));
  q.push(make(store, 2, 5));
  q.push(make(store, 3, 255));
  q.push(make(store, 4, 5));
  q.push(make(store, 5, 64));
  std::vector<std::uint64_t> order;
  while (auto* t = q.pop()) order.push_back(t->id.value);
  EXPECT_EQ(order, (std::vector<std::uint64_t>{3, 5, 2, 4, 1}));
  EXPECT_TRUE(q.empty());
}

TEST(ready_queue, erase_from_the_middle_keeps_the_rest_in_order) {
  std::deque<task_record> store;
  ready_queue q;
  auto& a = make(store, 1, 7);
  auto& b = make(store, 2, 7);
  auto& c = make(store, 3, 7);
  q.push(a);
  q.push(b);
  q.push(c);
  q.erase(b);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.pop(), &a);
  EXPECT_EQ(q.pop(), &c);
  EXPECT_EQ(q.pop(), nullptr);
}
