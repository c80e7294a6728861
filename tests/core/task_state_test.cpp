#include "drover/core/task_state.hpp"

#include <gtest/gtest.h>

using namespace drover::core;

namespace {
constexpr task_state all_states[] = {task_state::queued,    task_state::leased, task_state::succeeded,
                                     task_state::failed,    task_state::dead,   task_state::cancelled,
                                     task_state::expired};
}

TEST(task_state, queued_may_be_leased_cancelled_or_expired_only) {
  for (auto to : all_states) {
    const bool allowed = to == task_state::leased || to == task_state::cancelled || to == task_state::expired;
    EXPECT_EQ(can_transition(task_state::queued, to), allowed) << to_string(to);
  }
}

TEST(task_state, leased_may_end_any_way_but_expired_or_go_back_to_queued) {
  for (auto to : all_states) {
    const bool allowed = to != task_state::leased && to != task_state::expired;
    EXPECT_EQ(can_transition(task_state::leased, to), allowed) << to_string(to);
  }
}

TEST(task_state, terminal_states_are_final) {
  for (auto from : all_states) {
    if (!is_terminal(from)) continue;
    for (auto to : all_states) EXPECT_FALSE(can_transition(from, to)) << to_string(from) << "->" << to_string(to);
  }
  EXPECT_FALSE(is_terminal(task_state::queued));
  EXPECT_FALSE(is_terminal(task_state::leased));
}
