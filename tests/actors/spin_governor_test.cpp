// The idle spin follows the submit rate: long while tasks are few, short
// under load; and the broker's worker really takes the setting.
#include "drover/actors/spin_governor.hpp"

#include <gtest/gtest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/scheduler/worker.hpp>

#include "drover/actors/broker_actor.hpp"

using namespace drover;
using namespace drover::actors;
using namespace std::chrono_literals;

namespace {

core::time_point at_ms(std::int64_t ms) { return core::time_point{std::chrono::milliseconds(ms)}; }

spin_policy policy() { return spin_policy{200'000, 0, 20'000, 50ms}; }

}  // namespace

TEST(spin_governor, decides_once_a_window_has_passed) {
  spin_governor g(policy());
  EXPECT_FALSE(g.on_submits(1, at_ms(0)));
  EXPECT_FALSE(g.on_submits(1, at_ms(20))) << "20 ms is not a window yet";
  EXPECT_EQ(g.on_submits(1, at_ms(50)), 200'000u) << "3 tasks in 50 ms: quiet";
}

TEST(spin_governor, spins_while_quiet_and_not_under_load) {
  spin_governor g(policy());
  g.on_submits(0, at_ms(0));
  EXPECT_EQ(g.on_submits(100, at_ms(50)), 200'000u) << "2,000 tasks/s";
  EXPECT_EQ(g.on_submits(5'000, at_ms(100)), 0u) << "100,000 tasks/s";
  EXPECT_FALSE(g.on_submits(5'000, at_ms(150))) << "still busy: nothing to change";
  EXPECT_EQ(g.on_submits(1, at_ms(2'000)), 200'000u) << "a long pause: quiet again";
}

TEST(spin_governor, sets_the_idle_polls_of_the_work_stealing_worker_it_runs_on) {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  cfg.set("work-stealing.aggressive-poll-attempts", 7);
  caf::actor_system sys{cfg};
  auto probe = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    return {[=](std::size_t polls) -> std::size_t {
      EXPECT_TRUE(set_idle_spin(self->context(), polls));
      auto* w = dynamic_cast<caf::scheduler::worker<caf::policy::work_stealing>*>(self->context());
      return w ? w->data().strategies[0].attempts : 0;
    }};
  });
  caf::scoped_actor caller{sys};
  std::size_t seen = 0;
  caller->request(probe, caf::infinite, std::size_t{12'345}).receive([&](std::size_t n) { seen = n; },
                                                                      [&](caf::error&) {});
  EXPECT_EQ(seen, 12'345u);
  caf::anon_send_exit(probe, caf::exit_reason::user_shutdown);
}

TEST(spin_governor, off_a_work_stealing_worker_nothing_is_set) { EXPECT_FALSE(set_idle_spin(nullptr, 5)); }
