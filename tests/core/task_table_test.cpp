#include "drover/core/task_table.hpp"

#include <gtest/gtest.h>

#include <map>

#include "drover/core/rng.hpp"

using namespace drover::core;

TEST(task_table, records_keep_their_address_while_the_table_grows) {
  task_table table;
  task_record* first = table.insert(task_id{1});
  ASSERT_NE(first, nullptr);
  for (std::uint64_t i = 2; i < 3 * task_table::chunk_size; ++i) ASSERT_NE(table.insert(task_id{i}), nullptr);
  EXPECT_EQ(table.find(task_id{1}), first);
}

TEST(task_table, a_duplicate_id_is_refused) {
  task_table table;
  ASSERT_NE(table.insert(task_id{7}), nullptr);
  EXPECT_EQ(table.insert(task_id{7}), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

TEST(task_table, a_reused_slot_does_not_answer_for_its_old_task) {
  task_table table;
  task_record* a = table.insert(task_id{1});
  const auto slot = a->slot;
  table.erase(*a);
  task_record* b = table.insert(task_id{2});
  EXPECT_EQ(b->slot, slot) << "freed slots are reused";
  EXPECT_EQ(table.find(task_id{1}, slot), nullptr) << "stale slot hint";
  EXPECT_EQ(table.find(task_id{2}, slot), b);
  EXPECT_EQ(table.find(task_id{1}), nullptr);
}

TEST(task_table, matches_a_map_under_random_inserts_and_erases) {
  task_table table;
  std::map<std::uint64_t, task_record*> model;
  rng random(3);
  for (int step = 0; step < 200'000; ++step) {
    const std::uint64_t id = 1 + random.below(5000);
    if (random.chance(0.55)) {
      task_record* r = table.insert(task_id{id});
      ASSERT_EQ(r == nullptr, model.contains(id));
      if (r) model[id] = r;
    } else if (auto it = model.find(id); it != model.end()) {
      table.erase(*it->second);
      model.erase(it);
    }
    ASSERT_EQ(table.size(), model.size());
  }
  for (std::uint64_t id = 1; id <= 5000; ++id) {
    auto it = model.find(id);
    ASSERT_EQ(table.find(task_id{id}), it == model.end() ? nullptr : it->second) << id;
  }
}
