#include "drover/actors/pool_actor.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "drover/actors/broker_actor.hpp"
#include "support/caf_fixture.hpp"
#include "support/gate.hpp"
#include "support/recorder.hpp"

using namespace drover;
using namespace drover::actors;
using namespace std::chrono_literals;
using test_support::recorder;

namespace {

class pool_actor_test : public test_support::caf_fixture {
 protected:
  core::broker_config broker_config() {
    core::broker_config c;
    c.default_backoff = core::backoff_policy{100ms, 1s, 2.0, 0.0};
    c.default_timeout = 10s;
    return c;
  }

  caf::actor broker = sys.spawn(broker_actor, broker_config(), nullptr, nullptr);
  // Before `gate`: a handler parked in the gate may outlive its pool, and
  // destroying it posts to the pool's context (see pool_executor).
  asio::execution_context services;
  std::vector<std::shared_ptr<pool_context>> contexts;
  test_support::gate gate;
  int now_running = 0;
  int max_running = 0;
  int started = 0;
  std::uint64_t next_id = 0;

  ~pool_actor_test() override { sched.run(); }

  caf::actor spawn_pool(std::uint64_t id, std::uint32_t limit) {
    contexts.push_back(std::make_shared<pool_context>(services));
    auto pool = sys.spawn(pool_actor, pool_config{core::consumer_id{id}, limit, broker, &services, contexts.back()});
    sched.run();
    return pool;
  }

  handler parked() {
    return [this](task_context& ctx) -> asio::awaitable<task_result> {
      ++started;
      max_running = std::max(max_running, ++now_running);
      co_await gate.wait();
      --now_running;
      if (ctx.cancelled()) co_return task_result::failure("saw cancellation");
      co_return task_result::success(core::bytes::copy_from("done"));
    };
  }

  void register_handler(const caf::actor& pool, std::string queue, handler fn) {
    caf::anon_send(pool, register_msg{std::move(queue), std::move(fn)});
    sched.run();
  }

  std::shared_ptr<recorder> submit(core::task_options options = {}, std::string queue = "q") {
    auto r = std::make_shared<recorder>();
    caf::anon_send(broker, submit_msg{core::task_id{++next_id}, core::task_spec{queue, {}, std::move(options)}, r});
    sched.run();
    return r;
  }

  pool_stats stats(const caf::actor& pool) { return state_of<pool_state>(pool).stats(); }

  const core::broker_core& core_of_broker() { return *state_of<broker_state>(broker).core; }
};

}  // namespace

TEST_F(pool_actor_test, noop_handlers_complete_every_task) {
  auto pool = spawn_pool(1, 4);
  register_handler(pool, "q", [](task_context& ctx) -> asio::awaitable<task_result> {
    co_return task_result::success(ctx.payload());
  });
  std::vector<std::shared_ptr<recorder>> tasks;
  for (int i = 0; i < 50; ++i) tasks.push_back(submit());
  for (auto& r : tasks) {
    ASSERT_TRUE(r->outcome);
    EXPECT_EQ(r->outcome->state, core::task_state::succeeded);
  }
  EXPECT_EQ(stats(pool).completed, 50u);
  EXPECT_LE(stats(pool).peak_running, 4u);
  EXPECT_TRUE(core_of_broker().check_invariants());
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, a_handler_awaiting_without_its_permit_lets_another_task_run_and_gets_the_next_free_permit) {
  auto pool = spawn_pool(1, 1);
  test_support::gate outside;  // what the parent awaits without its permit
  std::vector<std::string> order;
  register_handler(pool, "parent", [&](task_context& ctx) -> asio::awaitable<task_result> {
    order.push_back("parent parks");
    co_await ctx.without_permit(outside.wait());
    order.push_back("parent resumes, " + std::to_string(started) + " started");
    co_return task_result::success({});
  });
  register_handler(pool, "q", parked());  // holds its permit at `gate`
  auto parent = submit({}, "parent");
  EXPECT_EQ(stats(pool).parked, 1u);
  EXPECT_EQ(stats(pool).running, 0u);
  EXPECT_EQ(core_of_broker().consumer(core::consumer_id{1})->credit, 1u) << "the parked parent's permit is demand again";

  auto first = submit(), second = submit();
  EXPECT_EQ(now_running, 1) << "the parent's permit went to a task";
  EXPECT_EQ(core_of_broker().stats(core_of_broker().find_queue("q").value()).ready, 1u);

  outside.open_one();
  sched.run();
  EXPECT_EQ(order, std::vector<std::string>{"parent parks"}) << "the parent waits for a permit to come free";
  EXPECT_FALSE(parent->outcome);
  EXPECT_EQ(core_of_broker().consumer(core::consumer_id{1})->credit, 0u) << "no demand for the permit the parent waits for";

  gate.open_one();  // the first task finishes
  sched.run();
  EXPECT_EQ(order.back(), "parent resumes, 1 started") << "the freed permit went to the parent before the next task";
  ASSERT_TRUE(parent->outcome);
  EXPECT_EQ(parent->outcome->state, core::task_state::succeeded);
  EXPECT_EQ(started, 2) << "the parent's end freed the permit for the next task";
  gate.open_all();
  sched.run();
  ASSERT_TRUE(first->outcome && second->outcome);
  EXPECT_EQ(stats(pool).peak_running, 1u);
  EXPECT_EQ(stats(pool).parked, 0u);
  EXPECT_EQ(max_running, 1);
  EXPECT_TRUE(core_of_broker().check_invariants());
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, a_wait_without_the_permit_that_throws_takes_the_permit_back_before_the_error_goes_on) {
  auto pool = spawn_pool(1, 1);
  test_support::gate outside;
  auto failing_wait = [&]() -> asio::awaitable<void> {
    co_await outside.wait();
    throw std::runtime_error("the awaited operation failed");
  };
  std::string seen;
  register_handler(pool, "parent", [&](task_context& ctx) -> asio::awaitable<task_result> {
    try {
      co_await ctx.without_permit(failing_wait());
    } catch (const std::exception& e) {
      seen = e.what() + std::string(", parked ") + std::to_string(stats(pool).parked);
    }
    co_return task_result::failure("gave up", false);
  });
  auto parent = submit({}, "parent");
  EXPECT_EQ(stats(pool).parked, 1u);
  outside.open_one();
  sched.run();
  EXPECT_EQ(seen, "the awaited operation failed, parked 0");
  ASSERT_TRUE(parent->outcome);
  EXPECT_EQ(parent->outcome->state, core::task_state::failed);
  EXPECT_EQ(stats(pool).running, 0u);
  EXPECT_EQ(core_of_broker().consumer(core::consumer_id{1})->credit, 1u) << "its permit is demand again";
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, a_handler_cancelled_while_it_waits_without_its_permit_takes_the_permit_back_and_ends) {
  auto pool = spawn_pool(1, 1);
  test_support::gate outside;  // ignores cancellation, as a child task's outcome does
  bool went_on = false;
  register_handler(pool, "parent", [&](task_context& ctx) -> asio::awaitable<task_result> {
    co_await ctx.without_permit(outside.wait());
    went_on = true;
    co_return task_result::success({});
  });
  auto parent = submit({}, "parent");
  caf::anon_send(broker, cancel_msg{core::task_id{1}});
  sched.run();
  ASSERT_TRUE(parent->outcome);
  EXPECT_EQ(parent->outcome->state, core::task_state::cancelled);
  EXPECT_EQ(stats(pool).parked, 1u);
  outside.open_one();
  sched.run();
  EXPECT_TRUE(went_on) << "the wait's own result came back after the permit, as it would uncancelled";
  EXPECT_EQ(stats(pool).parked, 0u) << "the cancelled handler took its permit back before it ended";
  EXPECT_EQ(stats(pool).running, 0u);
  // The permit is free again: the next task starts.
  register_handler(pool, "q", parked());
  submit();
  EXPECT_EQ(now_running, 1);
  gate.open_all();
  sched.run();
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, demand_equals_free_permits) {
  auto pool = spawn_pool(1, 3);
  register_handler(pool, "q", parked());
  EXPECT_EQ(core_of_broker().consumer(core::consumer_id{1})->credit, 3u);
  for (int i = 0; i < 5; ++i) submit();
  EXPECT_EQ(now_running, 3);
  EXPECT_EQ(core_of_broker().consumer(core::consumer_id{1})->credit, 0u);
  EXPECT_EQ(core_of_broker().stats(0).ready, 2u) << "the broker keeps what the pool did not ask for";
  gate.open_one();
  sched.run();
  EXPECT_EQ(now_running, 3) << "a finished handler's permit became demand and was filled";
  EXPECT_EQ(core_of_broker().stats(0).ready, 1u);
  gate.open_all();
  sched.run();
  gate.open_all();
  sched.run();
  EXPECT_EQ(stats(pool).completed, 5u);
  EXPECT_EQ(max_running, 3);
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, work_limit_holds_while_it_is_raised_and_lowered) {
  auto pool = spawn_pool(1, 4);
  register_handler(pool, "q", parked());
  for (int i = 0; i < 40; ++i) submit();
  EXPECT_EQ(now_running, 4);
  caf::anon_send(pool, limit_atom::value, std::uint32_t{8});
  sched.run();
  EXPECT_EQ(now_running, 8) << "raising the limit takes more work without restart";
  caf::anon_send(pool, limit_atom::value, std::uint32_t{2});
  sched.run();
  EXPECT_EQ(now_running, 8) << "lowering lets running handlers finish";
  // Once the running count has fallen under the new limit it never rises above it.
  bool under_limit = false;
  while (now_running > 2) {
    ASSERT_TRUE(gate.open_one());
    sched.run();
  }
  under_limit = true;
  EXPECT_TRUE(under_limit);
  EXPECT_EQ(stats(pool).completed + static_cast<std::uint64_t>(now_running) + core_of_broker().stats(0).ready, 40u);
  // Drain the rest under the lowered limit.
  while (stats(pool).completed < 40) {
    ASSERT_LE(now_running, 2);
    ASSERT_TRUE(gate.open_one());
    sched.run();
  }
  EXPECT_EQ(max_running, 8);
  EXPECT_TRUE(core_of_broker().check_invariants());
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, a_dead_pools_tasks_run_on_another) {
  auto doomed = spawn_pool(1, 4);
  register_handler(doomed, "q", parked());
  std::vector<std::shared_ptr<recorder>> tasks;
  for (int i = 0; i < 4; ++i) tasks.push_back(submit());
  EXPECT_EQ(now_running, 4);
  caf::anon_send_exit(doomed, caf::exit_reason::kill);
  sched.run();
  EXPECT_EQ(core_of_broker().stats(0).ready, 4u) << "the dead pool's leases were released at once";
  int other_runs = 0;
  auto survivor = spawn_pool(2, 4);
  register_handler(survivor, "q", [&](task_context&) -> asio::awaitable<task_result> {
    ++other_runs;
    co_return task_result::success({});
  });
  EXPECT_EQ(other_runs, 4);
  for (auto& r : tasks) {
    ASSERT_TRUE(r->outcome);
    EXPECT_EQ(r->outcome->state, core::task_state::succeeded);
    EXPECT_EQ(r->outcome->attempts, 2);
  }
  shutdown({survivor, broker});
}

TEST_F(pool_actor_test, cancel_reaches_the_running_handler) {
  auto pool = spawn_pool(1, 1);
  register_handler(pool, "q", parked());
  auto r = submit();
  EXPECT_EQ(now_running, 1);
  caf::anon_send(broker, cancel_msg{core::task_id{1}});
  sched.run();
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r->outcome->state, core::task_state::cancelled);
  EXPECT_EQ(stats(pool).running, 1u) << "the handler still holds its permit until it returns";
  gate.open_all();
  sched.run();
  EXPECT_EQ(stats(pool).running, 0u);
  EXPECT_EQ(state_of<broker_state>(broker).stale_reports, 1u) << "its late result was rejected";
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, timeouts_retry_until_dead_letter) {
  auto pool = spawn_pool(1, 2);
  register_handler(pool, "q", parked());
  auto r = submit({.max_attempts = 3, .timeout = 1s});
  EXPECT_EQ(started, 1);
  const auto slack = 2ms;  // timers fire within one wheel tick of their time
  advance(1s + slack);     // attempt 1 times out; backoff 100 ms
  ASSERT_FALSE(r->outcome);
  gate.open_all();         // the cancelled handler returns; its result is stale
  sched.run();
  advance(100ms + slack);
  EXPECT_EQ(started, 2);
  advance(1s + slack);
  gate.open_all();
  sched.run();
  advance(200ms + slack);
  EXPECT_EQ(started, 3);
  advance(1s + slack);
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r->outcome->state, core::task_state::dead);
  EXPECT_EQ(r->outcome->err.code, core::errc::timed_out);
  EXPECT_EQ(core_of_broker().dead_letters().size(), 1u);
  gate.open_all();
  sched.run();
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, handler_exceptions_become_failures) {
  auto pool = spawn_pool(1, 2);
  register_handler(pool, "q", [](task_context&) -> asio::awaitable<task_result> {
    throw std::runtime_error("exploded");
    co_return task_result::success({});
  });
  auto r = submit({.max_attempts = 1});
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r->outcome->state, core::task_state::dead);
  EXPECT_EQ(r->outcome->err.message, "exploded");
  shutdown({pool, broker});
}

TEST_F(pool_actor_test, permanent_failure_is_final) {
  auto pool = spawn_pool(1, 2);
  register_handler(pool, "q", [](task_context&) -> asio::awaitable<task_result> {
    co_return task_result::failure("bad input", false);
  });
  auto r = submit({.max_attempts = 5});
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r->outcome->state, core::task_state::failed);
  EXPECT_EQ(r->outcome->attempts, 1);
  shutdown({pool, broker});
}
