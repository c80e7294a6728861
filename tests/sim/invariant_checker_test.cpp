// Each invariant's checker catches its violation: fed the events of a node
// that broke it, the checker names that invariant (no checker can pass
// vacuously). The simulator's runs feed the same checker from real actors.
#include "drover/sim/invariant_checker.hpp"

#include <gtest/gtest.h>

#include <memory>

using namespace drover;
using namespace drover::sim;
using namespace std::chrono_literals;

namespace {

const core::time_point t0{1s};
core::task_id task(std::uint64_t v) { return core::task_id{v}; }
core::lease_id lease(std::uint64_t v) { return core::lease_id{v}; }
core::consumer_id consumer(std::uint64_t v) { return core::consumer_id{v}; }

std::string caught(const invariant_checker& c) { return c.first() ? c.first()->invariant : "nothing"; }

std::unique_ptr<core::broker_core> broker_with_consumer(core::consumer_id id) {
  auto b = std::make_unique<core::broker_core>(core::broker_config{}, t0);
  b->declare_queue("q");
  const std::string q = "q";
  EXPECT_TRUE(b->join(id, std::span<const std::string>(&q, 1)));
  return b;
}

}  // namespace

TEST(invariant_checker, a_well_behaved_history_passes) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.demand_sent(consumer(1), 1);
  c.dispatched(consumer(1), task(1), lease(7), t0);
  c.outcome(task(1), core::task_state::succeeded, "lease=7", false);
  c.check_drained();
  EXPECT_TRUE(c.ok()) << c.first()->detail;
}

TEST(invariant_checker, catches_a_lost_task) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.check_drained();
  EXPECT_EQ(caught(c), "lost_task");
}

TEST(invariant_checker, catches_a_task_completed_twice) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.outcome(task(1), core::task_state::cancelled, "", false);
  c.outcome(task(1), core::task_state::succeeded, "lease=0", false);
  EXPECT_EQ(caught(c), "completed_twice");
}

TEST(invariant_checker, catches_a_stale_attempt_recorded) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.demand_sent(consumer(1), 2);
  c.dispatched(consumer(1), task(1), lease(7), t0);
  c.dispatched(consumer(1), task(1), lease(9), t0 + 2s);  // the first lease expired; a retry
  c.outcome(task(1), core::task_state::succeeded, "lease=7", false);
  EXPECT_EQ(caught(c), "stale_attempt_recorded");
}

TEST(invariant_checker, catches_more_tasks_than_demanded) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.accepted(task(2), t0, false);
  c.demand_sent(consumer(1), 1);
  c.dispatched(consumer(1), task(1), lease(1), t0);
  EXPECT_TRUE(c.ok());
  c.dispatched(consumer(1), task(2), lease(2), t0);
  EXPECT_EQ(caught(c), "more_than_demanded");
}

TEST(invariant_checker, catches_a_delayed_task_run_early) {
  invariant_checker c;
  c.accepted(task(1), t0 + 500ms, false);
  c.demand_sent(consumer(1), 1);
  c.dispatched(consumer(1), task(1), lease(1), t0 + 499ms);
  EXPECT_EQ(caught(c), "delayed_task_ran_early");
}

TEST(invariant_checker, catches_a_dispatch_after_the_task_ended) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.outcome(task(1), core::task_state::cancelled, "", false);
  c.demand_sent(consumer(1), 1);
  c.dispatched(consumer(1), task(1), lease(1), t0);
  EXPECT_EQ(caught(c), "dispatch_after_end");
}

TEST(invariant_checker, catches_a_dead_consumer_whose_leases_stay_past_the_bound) {
  auto broker = broker_with_consumer(consumer(4));  // still joined: its leases were never released
  invariant_checker c;
  c.consumer_died(consumer(4), t0, 2s);
  c.check_broker(*broker, t0 + 1s);
  EXPECT_TRUE(c.ok()) << "within the bound";
  c.check_broker(*broker, t0 + 3s);
  EXPECT_EQ(caught(c), "dead_consumer_kept_leases");
}

TEST(invariant_checker, a_dead_consumer_the_broker_released_passes) {
  auto broker = broker_with_consumer(consumer(4));
  ASSERT_TRUE(broker->leave(consumer(4), t0));
  invariant_checker c;
  c.consumer_died(consumer(4), t0, 2s);
  c.check_broker(*broker, t0 + 3s);
  EXPECT_TRUE(c.ok());
}

TEST(invariant_checker, catches_credit_that_does_not_balance) {
  auto broker = broker_with_consumer(consumer(4));
  ASSERT_TRUE(broker->add_demand(consumer(4), 3));
  invariant_checker c;
  c.check_books(*broker, {{consumer(4), 3, 0}});
  EXPECT_TRUE(c.ok()) << "3 asked, 3 credited";
  c.check_books(*broker, {{consumer(4), 2, 0}});
  EXPECT_EQ(caught(c), "credit_leak");
}

TEST(invariant_checker, catches_outcomes_that_disagree_between_duplicate_submits) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.accepted(task(1), t0, true);
  c.outcome(task(1), core::task_state::succeeded, "lease=0", false);
  c.outcome(task(1), core::task_state::failed, "", true);
  EXPECT_EQ(caught(c), "outcomes_disagree");
}

TEST(invariant_checker, catches_a_runtime_refused_for_demand_it_was_entitled_to) {
  invariant_checker c;
  c.demand_refused(consumer(2), 4, 2, 3, 1);
  EXPECT_EQ(caught(c), "demand_refused");
}

TEST(invariant_checker, catches_an_ordered_channel_delivering_out_of_order) {
  invariant_checker c;
  c.channel_delivered(1, true, 0);
  c.channel_delivered(1, true, 2);
  EXPECT_EQ(caught(c), "outcome_out_of_order");
}

TEST(invariant_checker, an_unordered_channel_may_deliver_in_any_order) {
  invariant_checker c;
  c.channel_delivered(1, false, 2);
  c.channel_delivered(1, false, 0);
  c.channel_delivered(1, false, 1);
  c.check_channel(1, 3);
  EXPECT_TRUE(c.ok()) << caught(c);
}

TEST(invariant_checker, catches_an_outcome_delivered_twice) {
  invariant_checker c;
  c.channel_delivered(1, false, 0);
  c.channel_delivered(1, false, 0);
  EXPECT_EQ(caught(c), "outcome_delivered_twice");
}

TEST(invariant_checker, catches_a_submission_whose_outcome_never_reached_its_client) {
  invariant_checker c;
  c.channel_delivered(1, true, 0);
  c.check_channel(1, 2);
  EXPECT_EQ(caught(c), "outcome_not_delivered");
}

TEST(invariant_checker, catches_a_watcher_refused_while_its_task_lives) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.watch_refused(task(1));
  EXPECT_EQ(caught(c), "watch_refused_while_live");
}

TEST(invariant_checker, a_watcher_refused_after_its_task_ended_passes) {
  invariant_checker c;
  c.accepted(task(1), t0, false);
  c.outcome(task(1), core::task_state::cancelled, "", false);
  c.watch_refused(task(1));
  c.check_watcher(task(1), false, false);
  EXPECT_TRUE(c.ok());
}

TEST(invariant_checker, catches_a_watcher_never_told_the_outcome) {
  invariant_checker c;
  c.check_watcher(task(1), true, false);
  EXPECT_EQ(caught(c), "watcher_not_told");
}
