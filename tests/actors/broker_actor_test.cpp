#include "drover/actors/broker_actor.hpp"

#include "support/caf_fixture.hpp"
#include "support/recorder.hpp"

using namespace drover;
using namespace drover::actors;
using namespace std::chrono_literals;
using test_support::recorder;

namespace {

class broker_actor_test : public test_support::caf_fixture {
 protected:
  std::shared_ptr<recorder> submit(const caf::actor& broker, std::uint64_t id, std::string queue = "q",
                                   core::task_options options = {}) {
    auto r = std::make_shared<recorder>();
    caf::anon_send(broker, submit_msg{core::task_id{id}, core::task_spec{queue, {}, std::move(options)}, r});
    sched.run();
    return r;
  }
};

}  // namespace

TEST_F(broker_actor_test, full_node_rejects_with_queue_full) {
  core::broker_config c;
  c.max_tasks = 2;
  auto broker = sys.spawn(broker_actor, c, nullptr, nullptr);
  caf::anon_send(broker, declare_queue_msg{"q"});
  sched.run();
  auto a = submit(broker, 1);
  auto b = submit(broker, 2);
  auto full = submit(broker, 3);
  EXPECT_FALSE(a->rejected);
  EXPECT_FALSE(b->rejected);
  ASSERT_TRUE(full->rejected);
  EXPECT_EQ(full->rejected->code, core::errc::queue_full);
  shutdown({broker});
}

TEST_F(broker_actor_test, unknown_queue_is_rejected_with_its_name) {
  auto broker = sys.spawn(broker_actor, core::broker_config{}, nullptr, nullptr);
  auto r = submit(broker, 1, "missing");
  ASSERT_TRUE(r->rejected);
  EXPECT_EQ(r->rejected->code, core::errc::unknown_queue);
  EXPECT_NE(r->rejected->message.find("missing"), std::string::npos);
  shutdown({broker});
}

TEST_F(broker_actor_test, ttl_expires_on_virtual_time) {
  const auto timer_resolution = core::broker_config{}.timer_resolution + 1ms;
  auto broker = sys.spawn(broker_actor, core::broker_config{}, nullptr, nullptr);
  caf::anon_send(broker, declare_queue_msg{"q"});
  sched.run();
  core::task_options o;
  o.ttl = 500ms;
  auto r = submit(broker, 1, "q", o);
  advance(499ms);
  EXPECT_FALSE(r->outcome) << "never early";
  advance(timer_resolution);  // timers fire within one wheel tick of their time
  ASSERT_TRUE(r->outcome) << "the broker armed a timer for the ttl";
  EXPECT_EQ(r->outcome->state, core::task_state::expired);
  shutdown({broker});
}

TEST_F(broker_actor_test, ended_tasks_are_freed_by_the_next_submission) {
  auto inbox = std::make_shared<submission_inbox>([] {});
  auto broker = sys.spawn(broker_actor, core::broker_config{}, inbox, nullptr);
  caf::anon_send(broker, declare_queue_msg{"q"});
  sched.run();
  auto r = std::make_shared<recorder>();
  inbox->push(submission{core::task_id{1}, core::task_spec{"q", {}, {}}, r});
  caf::anon_send(broker, drain_atom::value);
  caf::anon_send(broker, cancel_msg{core::task_id{1}});
  sched.run();
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r.use_count(), 2) << "the inbox holds the retired observer until the next push";
  inbox->push(submission{core::task_id{2}, core::task_spec{"q", {}, {}}, nullptr});
  EXPECT_EQ(r.use_count(), 1) << "the push released it on the submitting thread";
  shutdown({broker});
}

TEST_F(broker_actor_test, inbox_batches_submissions_behind_one_doorbell) {
  int rings = 0;
  auto inbox = std::make_shared<submission_inbox>([&] { ++rings; });
  auto broker = sys.spawn(broker_actor, core::broker_config{}, inbox, nullptr);
  caf::anon_send(broker, declare_queue_msg{"q"});
  sched.run();
  std::vector<std::shared_ptr<recorder>> rs;
  for (std::uint64_t i = 1; i <= 100; ++i) {
    rs.push_back(std::make_shared<recorder>());
    inbox->push(submission{core::task_id{i}, core::task_spec{"q", {}, {}}, rs.back()});
  }
  EXPECT_EQ(rings, 1);
  caf::anon_send(broker, drain_atom::value);
  sched.run();
  EXPECT_EQ(state_of<broker_state>(broker).core->live_tasks(), 100u);
  for (auto& r : rs) EXPECT_EQ(r->accepted.value != 0, true);
  inbox->push(submission{core::task_id{101}, core::task_spec{"q", {}, {}}, nullptr});
  EXPECT_EQ(rings, 2) << "after a drain the next push rings again";
  shutdown({broker});
}
