#pragma once
// GoogleTest fixture on CAF's deterministic test coordinator: one thread,
// messages run only when the test says so, time moves only when advanced.
#include <gtest/gtest.h>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

namespace drover::test_support {

class caf_fixture : public ::testing::Test {
 protected:
  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.inline-output", true);
    return cfg;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys{init(cfg)};
  caf::scheduler::test_coordinator& sched = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());

  template <class State>
  State& state_of(const caf::actor& a) {
    return dynamic_cast<caf::stateful_actor<State>&>(*caf::actor_cast<caf::abstract_actor*>(a)).state;
  }

  /// Advances virtual time by `d`, firing due timers, and runs everything.
  void advance(caf::timespan d) {
    sched.advance_time(d);
    sched.run();
  }

  /// Actors must be told to exit, else a pending timer keeps the system alive.
  void shutdown(std::initializer_list<caf::actor> actors) {
    for (const auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched.run();
  }
};

}  // namespace drover::test_support
