#include "drover/core/broker_core.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace drover::core;
using namespace std::chrono_literals;

namespace {

struct recorder : task_observer {
  task_id accepted;
  bool duplicate = false;
  std::vector<task_state> states;
  std::vector<task_outcome> outcomes;
  void on_accepted(task_id id, bool dup, observer_tag) override { accepted = id, duplicate = dup; }
  void on_state(task_state s, std::uint16_t, observer_tag) override { states.push_back(s); }
  void on_outcome(const task_outcome& o, observer_tag) override { outcomes.push_back(o); }
  void on_rejected(const error&, observer_tag) override { ADD_FAILURE() << "rejected"; }
  bool follows_states() const override { return follows; }
  bool follows = true;
};

class broker_core_test : public ::testing::Test {
 protected:
  broker_config config() {
    broker_config c;
    c.default_backoff = backoff_policy{100ms, 1s, 2.0, 0.0};
    c.default_timeout = 5s;
    return c;
  }

  broker_core broker{config(), time_zero};
  time_point now = time_zero;
  std::uint64_t next_id = 0;

  void SetUp() override { broker.declare_queue("q"); }
  void TearDown() override { EXPECT_TRUE(broker.check_invariants()) << broker.check_invariants().err().message; }

  std::shared_ptr<recorder> submit(task_options options = {}, std::string queue = "q", std::string payload = "p") {
    auto r = std::make_shared<recorder>();
    auto ack = broker.submit(task_id{++next_id}, task_spec{queue, bytes::copy_from(payload), std::move(options)}, r, now);
    EXPECT_TRUE(ack) << ack.err().message;
    return r;
  }

  void join(std::uint64_t consumer, std::uint32_t demand, std::vector<std::string> queues = {"q"}) {
    ASSERT_TRUE(broker.join(consumer_id{consumer}, queues));
    ASSERT_TRUE(broker.add_demand(consumer_id{consumer}, demand));
  }

  std::vector<dispatch_item> dispatched_to(std::uint64_t consumer) {
    broker.dispatch(now);
    std::vector<dispatch_item> items;
    for (auto& batch : broker.take_dispatches())
      if (batch.consumer == consumer_id{consumer})
        for (auto& item : batch.items) items.push_back(std::move(item));
    return items;
  }

  std::map<std::uint64_t, std::size_t> dispatch_counts() {
    broker.dispatch(now);
    std::map<std::uint64_t, std::size_t> counts;
    for (auto& batch : broker.take_dispatches()) counts[batch.consumer.value] += batch.items.size();
    return counts;
  }

  void tick(duration d) {
    now += d;
    broker.advance(now);
  }
};

}  // namespace

TEST_F(broker_core_test, success_runs_queued_leased_succeeded) {
  auto r = submit();
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].attempt, 1);
  EXPECT_EQ(items[0].payload.view(), "p");
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success(bytes::copy_from("ok")), now));
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::succeeded);
  EXPECT_EQ(r->outcomes[0].value.view(), "ok");
  EXPECT_EQ(r->states, std::vector<task_state>{task_state::leased});
  EXPECT_EQ(broker.live_tasks(), 0u);
}

TEST_F(broker_core_test, a_live_task_id_submitted_again_is_refused_and_the_first_task_is_untouched) {
  submit({}, "q", "first");
  const task_id live{next_id};
  auto again = broker.submit(live, task_spec{"q", bytes::copy_from(std::string_view("second")), {}}, nullptr, now);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.err().code, errc::invalid_argument);
  auto zero = broker.submit(task_id{0}, task_spec{"q", bytes::copy_from(std::string_view("x")), {}}, nullptr, now);
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.err().code, errc::invalid_argument);
  join(1, 4);
  const auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u) << "one live task: the refused submits left nothing behind";
  EXPECT_EQ(items[0].payload.view(), "first");
}

TEST_F(broker_core_test, an_observer_that_does_not_follow_states_hears_only_the_outcome) {
  auto r = std::make_shared<recorder>();
  r->follows = false;
  ASSERT_TRUE(broker.submit(task_id{++next_id}, task_spec{"q", bytes::copy_from("p"), {}}, r, now));
  auto following = submit();
  join(1, 2);
  for (const auto& item : dispatched_to(1))
    ASSERT_TRUE(broker.report(consumer_id{1}, item.id, item.lease, attempt_result::success({}), now));
  EXPECT_TRUE(r->states.empty());
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::succeeded);
  EXPECT_EQ(following->states, std::vector<task_state>{task_state::leased}) << "its neighbour still hears them";
}

TEST_F(broker_core_test, one_observer_of_many_tasks_hears_each_call_with_that_tasks_tag) {
  struct tagged : task_observer {
    std::vector<std::pair<observer_tag, std::string>> heard;
    void on_accepted(task_id id, bool dup, observer_tag t) override {
      heard.emplace_back(t, "accepted " + std::to_string(id.value) + (dup ? " dup" : ""));
    }
    void on_state(task_state s, std::uint16_t, observer_tag t) override { heard.emplace_back(t, std::string(to_string(s))); }
    void on_outcome(const task_outcome& o, observer_tag t) override {
      heard.emplace_back(t, "outcome " + std::to_string(o.id.value) + " " + std::string(o.value.view()));
    }
    void on_rejected(const error&, observer_tag t) override { heard.emplace_back(t, "rejected"); }
  };
  auto o = std::make_shared<tagged>();
  ASSERT_TRUE(broker.submit(task_id{1}, task_spec{"q", bytes::copy_from("a"), {}}, observer_ref(o, 7), now));
  ASSERT_TRUE(broker.submit(task_id{2}, task_spec{"q", bytes::copy_from("b"), {.idempotency_key = "k"}},
                            observer_ref(o, 9), now));
  // A duplicate joins task 2 under a tag of its own.
  ASSERT_TRUE(broker.submit(task_id{3}, task_spec{"q", bytes::copy_from("b"), {.idempotency_key = "k"}},
                            observer_ref(o, 11), now));
  // Refused: the observer is left with the caller, and hears nothing.
  observer_ref refused(o, 13);
  EXPECT_FALSE(broker.submit(task_id{4}, task_spec{"nope", {}, {}}, std::move(refused), now));
  EXPECT_EQ(refused.target, o);
  join(1, 2);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 2u);
  for (const auto& item : items)
    ASSERT_TRUE(broker.report(consumer_id{1}, item.id, item.lease,
                              attempt_result::success(bytes::copy_from(item.id.value == 1 ? "x" : "y")), now));
  using heard = std::vector<std::pair<observer_tag, std::string>>;
  EXPECT_EQ(o->heard, (heard{{7, "accepted 1"},
                             {9, "accepted 2"},
                             {11, "accepted 2 dup"},
                             {11, "queued"},
                             {7, "leased"},
                             {9, "leased"},
                             {11, "leased"},
                             {7, "outcome 1 x"},
                             {9, "outcome 2 y"},
                             {11, "outcome 2 y"}}));
}

TEST_F(broker_core_test, ended_tasks_hand_back_their_observer_and_payload) {
  auto payload = bytes::copy_from("p");
  auto r = std::make_shared<recorder>();
  ASSERT_TRUE(broker.submit(task_id{50}, task_spec{"q", payload, {}}, r, now));
  ASSERT_TRUE(broker.cancel(task_id{50}, now));
  auto retired = broker.take_retired();
  ASSERT_EQ(retired.observers.size(), 1u);
  EXPECT_EQ(retired.observers[0].get(), r.get());
  ASSERT_EQ(retired.payloads.size(), 1u);
  EXPECT_TRUE(retired.payloads[0].same_buffer(payload));
  EXPECT_TRUE(broker.take_retired().empty());
}

TEST_F(broker_core_test, payload_reaches_consumer_without_a_copy) {
  auto payload = bytes::copy_from("shared");
  ASSERT_TRUE(broker.submit(task_id{99}, task_spec{"q", payload, {}}, nullptr, now));
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_TRUE(items[0].payload.same_buffer(payload));
}

TEST_F(broker_core_test, credit_is_never_exceeded) {
  for (int i = 0; i < 10; ++i) submit();
  join(1, 3);
  EXPECT_EQ(dispatched_to(1).size(), 3u);
  EXPECT_EQ(dispatched_to(1).size(), 0u) << "no demand left";
  ASSERT_TRUE(broker.add_demand(consumer_id{1}, 2));
  EXPECT_EQ(dispatched_to(1).size(), 2u);
  EXPECT_EQ(broker.consumer(consumer_id{1})->in_flight, 5u);
  EXPECT_EQ(broker.consumer(consumer_id{1})->credit, 0u);
}

TEST_F(broker_core_test, revoked_credit_is_not_used) {
  join(1, 5);
  auto revoked = broker.revoke_demand(consumer_id{1}, 3);
  ASSERT_TRUE(revoked);
  EXPECT_EQ(*revoked, 3u);
  for (int i = 0; i < 10; ++i) submit();
  EXPECT_EQ(dispatched_to(1).size(), 2u);
  EXPECT_EQ(*broker.revoke_demand(consumer_id{1}, 3), 0u) << "nothing left to revoke";
}

TEST_F(broker_core_test, least_loaded_spreads_over_consumers) {
  join(1, 100);
  join(2, 100);
  join(3, 100);
  for (int i = 0; i < 30; ++i) submit();
  auto counts = dispatch_counts();
  EXPECT_EQ(counts[1], 10u);
  EXPECT_EQ(counts[2], 10u);
  EXPECT_EQ(counts[3], 10u);
}

TEST_F(broker_core_test, busy_consumer_gets_less_under_least_loaded) {
  join(1, 100);
  for (int i = 0; i < 5; ++i) submit();
  EXPECT_EQ(dispatched_to(1).size(), 5u);  // consumer 1 now has 5 in flight
  join(2, 100);
  for (int i = 0; i < 7; ++i) submit();
  auto counts = dispatch_counts();
  EXPECT_EQ(counts[2], 6u) << "the idle consumer catches up first";
  EXPECT_EQ(counts[1], 1u);
}

TEST_F(broker_core_test, higher_priority_dispatches_first) {
  submit({.priority = 1});
  submit({.priority = 9});
  submit({.priority = 5});
  join(1, 3);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].id, task_id{2});
  EXPECT_EQ(items[1].id, task_id{3});
  EXPECT_EQ(items[2].id, task_id{1});
}

TEST_F(broker_core_test, a_stale_attempt_cannot_complete_the_task) {
  task_options o;
  o.timeout = 1s;
  auto r = submit(o);
  join(1, 1);
  join(2, 1);
  auto first = dispatched_to(1);
  ASSERT_EQ(first.size(), 1u);
  tick(1s);  // lease expires: retried after backoff
  auto cancels = broker.take_cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].lease, first[0].lease);
  tick(100ms);
  auto second = dispatched_to(2);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  auto stale = broker.report(consumer_id{1}, first[0].id, first[0].lease, attempt_result::success({}), now);
  EXPECT_EQ(stale.code(), errc::stale_lease);
  EXPECT_TRUE(r->outcomes.empty());
  ASSERT_TRUE(broker.report(consumer_id{2}, second[0].id, second[0].lease, attempt_result::success({}), now));
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].attempts, 2);
}

TEST_F(broker_core_test, only_the_holder_may_report_a_leased_task) {
  auto r = submit();
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  join(2, 1);
  // Found by its slot, the task names its holder; anyone else is refused
  // as before: a joined consumer's report is stale, an unjoined one's unknown.
  EXPECT_EQ(broker.report(consumer_id{2}, items[0].id, items[0].lease, attempt_result::success({}), now, items[0].slot).code(),
            errc::stale_lease);
  EXPECT_EQ(broker.report(consumer_id{9}, items[0].id, items[0].lease, attempt_result::success({}), now, items[0].slot).code(),
            errc::unknown_consumer);
  EXPECT_TRUE(r->outcomes.empty());
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success({}), now, items[0].slot));
  ASSERT_EQ(r->outcomes.size(), 1u);
}

TEST_F(broker_core_test, a_consumer_that_left_is_not_found_again_until_it_rejoins) {
  auto r = submit();
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  // Reporting, then asking for more, makes consumer 1 the last one found.
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success({}), now, items[0].slot));
  ASSERT_TRUE(broker.add_demand(consumer_id{1}, 1));
  ASSERT_TRUE(broker.leave(consumer_id{1}, now));
  EXPECT_EQ(broker.add_demand(consumer_id{1}, 1).code(), errc::unknown_consumer);
  // Rejoined (its old slot reused), it is the new consumer: no credit from before.
  ASSERT_TRUE(broker.join(consumer_id{1}, std::vector<std::string>{"q"}));
  ASSERT_TRUE(broker.consumer(consumer_id{1}));
  EXPECT_EQ(broker.consumer(consumer_id{1})->credit, 0u);
  ASSERT_TRUE(broker.add_demand(consumer_id{1}, 2));
  EXPECT_EQ(broker.consumer(consumer_id{1})->credit, 2u);
}

TEST_F(broker_core_test, a_result_after_the_outcome_is_stale) {
  submit();
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success({}), now));
  EXPECT_EQ(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success({}), now).code(),
            errc::stale_lease);
}

TEST_F(broker_core_test, retries_back_off_then_dead_letter) {
  task_options o;
  o.max_attempts = 3;
  auto r = submit(o);
  join(1, 10);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto items = dispatched_to(1);
    ASSERT_EQ(items.size(), 1u) << "attempt " << attempt;
    EXPECT_EQ(items[0].attempt, attempt);
    ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::failure("boom"), now));
    if (attempt < 3) {
      const auto delay = 100ms * (1 << (attempt - 1));  // 100 ms, 200 ms
      tick(delay - 1ms);
      EXPECT_TRUE(dispatched_to(1).empty()) << "dispatched before its backoff ended";
      tick(1ms);
    }
  }
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::dead);
  EXPECT_EQ(r->outcomes[0].err.message, "boom");
  ASSERT_EQ(broker.dead_letters().size(), 1u);
  EXPECT_EQ(broker.dead_letters().letters()[0].attempts, 3);
  EXPECT_EQ(broker.dead_letters().letters()[0].payload.view(), "p");
}

TEST_F(broker_core_test, permanent_failure_skips_remaining_attempts) {
  auto r = submit({.max_attempts = 5});
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::failure("bad input", false), now));
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::failed);
  EXPECT_EQ(r->outcomes[0].err.code, errc::handler_failed);
  EXPECT_EQ(broker.dead_letters().size(), 0u);
}

TEST_F(broker_core_test, consumer_departure_requeues_its_leases_at_once) {
  for (int i = 0; i < 4; ++i) submit();
  join(1, 4);
  EXPECT_EQ(dispatched_to(1).size(), 4u);
  ASSERT_TRUE(broker.leave(consumer_id{1}, now));
  EXPECT_EQ(broker.stats(0).ready, 4u);
  join(2, 10);
  auto items = dispatched_to(2);
  ASSERT_EQ(items.size(), 4u);
  EXPECT_EQ(items[0].attempt, 2);
  EXPECT_FALSE(broker.consumer(consumer_id{1}));
}

TEST_F(broker_core_test, lease_expiry_counts_as_a_failed_attempt) {
  auto r = submit({.max_attempts = 1, .timeout = 2s});
  join(1, 1);
  dispatched_to(1);
  tick(1999ms);
  EXPECT_TRUE(r->outcomes.empty());
  tick(1ms);
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::dead);
  EXPECT_EQ(r->outcomes[0].err.code, errc::timed_out);
}

TEST_F(broker_core_test, delayed_task_never_dispatches_early) {
  task_options o;
  o.not_before = now + 50ms;
  submit(o);
  join(1, 1);
  EXPECT_TRUE(dispatched_to(1).empty());
  EXPECT_EQ(broker.stats(0).delayed, 1u);
  ASSERT_TRUE(broker.next_wakeup());
  EXPECT_LE(*broker.next_wakeup(), now + 50ms);
  tick(49ms);
  EXPECT_TRUE(dispatched_to(1).empty());
  tick(1ms);
  EXPECT_EQ(dispatched_to(1).size(), 1u);
}

TEST_F(broker_core_test, cancel_of_a_queued_task_is_final) {
  auto r = submit();
  ASSERT_TRUE(broker.cancel(task_id{1}, now));
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::cancelled);
  join(1, 1);
  EXPECT_TRUE(dispatched_to(1).empty());
  EXPECT_EQ(broker.cancel(task_id{1}, now).code(), errc::unknown_task);
}

TEST_F(broker_core_test, cancel_of_a_leased_task_notifies_its_consumer) {
  auto r = submit();
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_TRUE(broker.cancel(items[0].id, now));
  auto cancels = broker.take_cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].consumer, consumer_id{1});
  EXPECT_EQ(cancels[0].lease, items[0].lease);
  EXPECT_EQ(r->outcomes.at(0).state, task_state::cancelled);
  EXPECT_EQ(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success({}), now).code(),
            errc::stale_lease);
  EXPECT_EQ(broker.consumer(consumer_id{1})->in_flight, 0u);
}

TEST_F(broker_core_test, cancel_of_a_delayed_task_is_final) {
  task_options o;
  o.not_before = now + 1s;
  auto r = submit(o);
  ASSERT_TRUE(broker.cancel(task_id{1}, now));
  tick(2s);
  join(1, 1);
  EXPECT_TRUE(dispatched_to(1).empty());
  EXPECT_EQ(r->outcomes.size(), 1u);
}

TEST_F(broker_core_test, undispatched_task_expires_after_its_ttl) {
  auto r = submit({.ttl = 100ms});
  tick(100ms);
  ASSERT_EQ(r->outcomes.size(), 1u);
  EXPECT_EQ(r->outcomes[0].state, task_state::expired);
  EXPECT_EQ(broker.live_tasks(), 0u);
}

TEST_F(broker_core_test, same_idempotency_key_returns_the_first_task) {
  auto first = submit({.idempotency_key = "k"});
  auto second = submit({.idempotency_key = "k"});
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->accepted, task_id{1});
  EXPECT_EQ(broker.live_tasks(), 1u);
  join(1, 5);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success(bytes::copy_from("v")), now));
  EXPECT_EQ(first->outcomes.size(), 1u);
  EXPECT_EQ(second->outcomes.size(), 1u) << "both submitters learn the outcome";
  auto third = submit({.idempotency_key = "k"});
  EXPECT_TRUE(third->duplicate);
  ASSERT_EQ(third->outcomes.size(), 1u) << "within retention the outcome is replayed";
  EXPECT_EQ(third->outcomes[0].value.view(), "v");
  broker.declare_queue("q2");
  auto other_queue = submit({.idempotency_key = "k"}, "q2");
  EXPECT_FALSE(other_queue->duplicate) << "keys are scoped to their queue";
}

TEST_F(broker_core_test, idempotency_key_is_forgotten_after_retention) {
  submit({.idempotency_key = "k"});
  ASSERT_TRUE(broker.cancel(task_id{1}, now));
  tick(broker.config().idempotency_retention);
  auto again = submit({.idempotency_key = "k"});
  EXPECT_FALSE(again->duplicate);
  EXPECT_EQ(again->accepted, task_id{2});
}

TEST_F(broker_core_test, unknown_queue_is_a_clear_error) {
  auto ack = broker.submit(task_id{1}, task_spec{"nope", {}, {}}, nullptr, now);
  ASSERT_FALSE(ack);
  EXPECT_EQ(ack.code(), errc::unknown_queue);
  EXPECT_NE(ack.err().message.find("nope"), std::string::npos);
}

TEST_F(broker_core_test, invalid_options_are_rejected) {
  task_options o;
  o.backoff = backoff_policy{2s, 1s, 2.0, 0.0};
  EXPECT_EQ(broker.submit(task_id{1}, task_spec{"q", {}, o}, nullptr, now).code(), errc::invalid_argument);
  EXPECT_EQ(broker.submit(task_id{2}, task_spec{"q", {}, {.max_attempts = 5000}}, nullptr, now).code(),
            errc::invalid_argument);
  EXPECT_EQ(broker.submit(task_id{3}, task_spec{"q", {}, {.timeout = timeout_max + 1ms}}, nullptr, now).code(),
            errc::invalid_argument);
  EXPECT_EQ(broker.live_tasks(), 0u);
}

TEST(broker_core_limits, full_node_answers_queue_full) {
  broker_config c;
  c.max_tasks = 2;
  broker_core broker(c, time_zero);
  broker.declare_queue("q");
  ASSERT_TRUE(broker.submit(task_id{1}, task_spec{"q", {}, {}}, nullptr, time_zero));
  ASSERT_TRUE(broker.submit(task_id{2}, task_spec{"q", {}, {}}, nullptr, time_zero));
  EXPECT_EQ(broker.submit(task_id{3}, task_spec{"q", {}, {}}, nullptr, time_zero).code(), errc::queue_full);
  ASSERT_TRUE(broker.cancel(task_id{1}, time_zero));
  EXPECT_TRUE(broker.submit(task_id{3}, task_spec{"q", {}, {}}, nullptr, time_zero));
}

TEST(broker_core_limits, oversized_payload_is_rejected) {
  broker_config c;
  c.payload_bytes_max = 4;
  broker_core broker(c, time_zero);
  broker.declare_queue("q");
  EXPECT_EQ(broker.submit(task_id{1}, task_spec{"q", bytes::copy_from("12345"), {}}, nullptr, time_zero).code(),
            errc::payload_too_large);
}

TEST_F(broker_core_test, consumers_joining_and_leaving_never_get_tasks_after_leaving) {
  rng random(7);
  std::vector<std::uint64_t> joined;
  std::uint64_t next_consumer = 1;
  for (int step = 0; step < 2000; ++step) {
    const auto roll = random.below(10);
    if (roll < 3) {
      join(next_consumer, static_cast<std::uint32_t>(random.below(4)));
      joined.push_back(next_consumer++);
    } else if (roll < 5 && !joined.empty()) {
      const auto i = random.below(joined.size());
      ASSERT_TRUE(broker.leave(consumer_id{joined[i]}, now));
      joined.erase(joined.begin() + static_cast<long>(i));
    } else {
      submit();
    }
    broker.dispatch(now);
    for (auto& batch : broker.take_dispatches()) {
      ASSERT_NE(std::find(joined.begin(), joined.end(), batch.consumer.value), joined.end());
      for (auto& item : batch.items) {
        if (random.chance(0.5)) {
          ASSERT_TRUE(broker.report(batch.consumer, item.id, item.lease, attempt_result::success({}), now));
        }
      }
    }
    ASSERT_TRUE(broker.check_invariants()) << broker.check_invariants().err().message;
  }
}

TEST_F(broker_core_test, a_watcher_hears_the_current_state_then_each_change_and_the_outcome) {
  auto submitter = submit();
  auto watcher = std::make_shared<recorder>();
  ASSERT_TRUE(broker.watch(task_id{1}, watcher));
  EXPECT_EQ(watcher->states, std::vector<task_state>{task_state::queued}) << "the state it joins in";
  join(1, 1);
  auto items = dispatched_to(1);
  ASSERT_EQ(items.size(), 1u);
  ASSERT_TRUE(broker.report(consumer_id{1}, items[0].id, items[0].lease, attempt_result::success(bytes::copy_from("v")), now));
  EXPECT_EQ(watcher->states, (std::vector<task_state>{task_state::queued, task_state::leased})) << "the outcome tells the end";
  ASSERT_EQ(watcher->outcomes.size(), 1u);
  EXPECT_EQ(watcher->outcomes[0].state, task_state::succeeded);
  EXPECT_EQ(watcher->outcomes[0].value.view(), "v");
  EXPECT_EQ(submitter->outcomes.size(), 1u) << "the submitter still hears it";
  EXPECT_FALSE(broker.watch(task_id{1}, std::make_shared<recorder>())) << "an ended task cannot be watched";
  EXPECT_FALSE(broker.watch(task_id{99}, std::make_shared<recorder>()));
}

TEST_F(broker_core_test, an_unwatched_observer_hears_nothing_more) {
  submit();
  auto stays = std::make_shared<recorder>(), leaves = std::make_shared<recorder>();
  ASSERT_TRUE(broker.watch(task_id{1}, stays));
  ASSERT_TRUE(broker.watch(task_id{1}, leaves));
  broker.unwatch(task_id{1}, leaves.get());
  EXPECT_EQ(leaves.use_count(), 1) << "the broker let go of it";
  ASSERT_TRUE(broker.cancel(task_id{1}, now));
  EXPECT_EQ(stays->outcomes.size(), 1u);
  EXPECT_TRUE(leaves->outcomes.empty());
}

TEST_F(broker_core_test, a_queues_demand_is_the_credit_its_consumers_hold_now) {
  broker.declare_queue("other");
  join(1, 3);                        // q
  join(2, 2, {"q", "other"});        // counts in both
  join(3, 5, {"other"});
  EXPECT_EQ(broker.stats(0).demand, 5u);
  EXPECT_EQ(broker.stats(1).demand, 7u);
  submit();
  submit();
  broker.dispatch(now);
  (void)broker.take_dispatches();
  // Two tasks took two credits from q's consumers, whichever got them.
  const auto all = broker.all_stats();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].demand, 3u);
  EXPECT_EQ(all[0].leased, 2u);
  EXPECT_EQ(all[0].demand, broker.stats(0).demand);
  EXPECT_EQ(all[1].demand, broker.stats(1).demand);
  ASSERT_TRUE(broker.leave(consumer_id{3}, now));
  EXPECT_EQ(broker.all_stats()[1].demand, broker.stats(1).demand);
  EXPECT_LE(broker.all_stats()[1].demand, 2u) << "the consumer that left takes its credit with it";
}
