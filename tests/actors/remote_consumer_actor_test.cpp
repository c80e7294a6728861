#include "drover/actors/remote_consumer_actor.hpp"

#include <map>
#include <set>

#include "drover/actors/broker_actor.hpp"
#include "support/caf_fixture.hpp"
#include "support/recorder.hpp"

using namespace drover;
using namespace drover::actors;
using test_support::recorder;

namespace {

struct recording_sink : remote_sink {
  bool joined_ok = false;
  std::vector<remote_task> delivered;
  std::vector<core::cancel_notice> revoked;
  std::vector<core::error> refusals;
  std::vector<core::error> failures;

  void joined(core::consumer_id) override { joined_ok = true; }
  void deliver(std::vector<remote_task> tasks) override {
    for (auto& t : tasks) delivered.push_back(std::move(t));
  }
  void revoke(std::vector<core::cancel_notice> notices) override {
    revoked.insert(revoked.end(), notices.begin(), notices.end());
  }
  void refused(core::task_id, core::lease_id, core::error why) override { refusals.push_back(std::move(why)); }
  void failed(core::error why) override { failures.push_back(std::move(why)); }
};

class remote_consumer_test : public test_support::caf_fixture {
 protected:
  caf::actor broker = sys.spawn(broker_actor, core::broker_config{}, nullptr, nullptr);
  std::shared_ptr<recording_sink> sink = std::make_shared<recording_sink>();
  std::uint64_t next_id = 0;

  caf::actor spawn_runtime(std::uint64_t id, std::vector<std::string> queues) {
    auto a = sys.spawn(remote_consumer_actor, remote_consumer_config{core::consumer_id{id}, broker, std::move(queues), sink});
    sched.run();
    return a;
  }

  std::shared_ptr<recorder> submit(std::string queue, std::string payload) {
    auto r = std::make_shared<recorder>();
    caf::anon_send(broker, submit_msg{core::task_id{++next_id}, core::task_spec{queue, core::bytes::copy_from(payload), {}}, r});
    sched.run();
    return r;
  }
};

}  // namespace

TEST_F(remote_consumer_test, a_runtime_gets_no_more_tasks_than_it_demanded) {
  auto runtime = spawn_runtime(7, {"resize"});
  ASSERT_TRUE(sink->joined_ok);
  for (int i = 0; i < 3; ++i) submit("resize", "img" + std::to_string(i));
  EXPECT_TRUE(sink->delivered.empty()) << "no demand yet";
  caf::anon_send(runtime, remote_demand_msg{2});
  sched.run();
  ASSERT_EQ(sink->delivered.size(), 2u);
  EXPECT_EQ(sink->delivered[0].queue, "resize");
  EXPECT_EQ(sink->delivered[0].item.payload.view(), "img0");
  shutdown({runtime, broker});
}

TEST_F(remote_consumer_test, results_settle_tasks_and_unheld_leases_are_refused) {
  auto runtime = spawn_runtime(7, {"q"});
  auto r = submit("q", "x");
  caf::anon_send(runtime, remote_demand_msg{1});
  sched.run();
  ASSERT_EQ(sink->delivered.size(), 1u);
  const auto item = sink->delivered[0].item;
  caf::anon_send(runtime, remote_reports_msg{{remote_report{item.id, core::lease_id{item.lease.value + 1000},
                                                          task_result::success({}), item.slot}}});
  sched.run();
  ASSERT_EQ(sink->refusals.size(), 1u);
  EXPECT_EQ(sink->refusals[0].code, core::errc::stale_lease);
  EXPECT_FALSE(r->outcome) << "a refused report must not reach the broker";
  caf::anon_send(runtime, remote_reports_msg{{remote_report{item.id, item.lease,
                                                          task_result::success(core::bytes::copy_from("done")), item.slot}}});
  sched.run();
  ASSERT_TRUE(r->outcome);
  EXPECT_EQ(r->outcome->value.view(), "done");
  shutdown({runtime, broker});
}

TEST_F(remote_consumer_test, a_runtime_that_goes_away_has_its_tasks_requeued_at_once) {
  auto gone = spawn_runtime(7, {"q"});
  auto r = submit("q", "x");
  caf::anon_send(gone, remote_demand_msg{1});
  sched.run();
  ASSERT_EQ(sink->delivered.size(), 1u);
  caf::anon_send_exit(gone, caf::exit_reason::kill);  // the connection dropped
  sched.run();
  auto other_sink = std::make_shared<recording_sink>();
  auto other = sys.spawn(remote_consumer_actor, remote_consumer_config{core::consumer_id{8}, broker, {"q"}, other_sink});
  sched.run();
  caf::anon_send(other, remote_demand_msg{1});
  sched.run();
  ASSERT_EQ(other_sink->delivered.size(), 1u);
  EXPECT_EQ(other_sink->delivered[0].item.attempt, 2) << "the same task, second attempt";
  shutdown({other, broker});
}

TEST_F(remote_consumer_test, a_cancelled_lease_is_revoked_and_its_late_result_refused) {
  auto runtime = spawn_runtime(7, {"q"});
  auto r = submit("q", "x");
  caf::anon_send(runtime, remote_demand_msg{1});
  sched.run();
  const auto item = sink->delivered.at(0).item;
  caf::anon_send(broker, cancel_msg{item.id});
  sched.run();
  ASSERT_EQ(sink->revoked.size(), 1u);
  EXPECT_EQ(sink->revoked[0].lease, item.lease);
  caf::anon_send(runtime, remote_reports_msg{{remote_report{item.id, item.lease, task_result::success({}), item.slot}}});
  sched.run();
  EXPECT_EQ(sink->refusals.size(), 1u);
  EXPECT_EQ(r->outcome->state, core::task_state::cancelled);
  shutdown({runtime, broker});
}

TEST_F(remote_consumer_test, a_consumer_that_joins_with_a_sink_gets_its_tasks_from_the_broker_directly) {
  // Stands in for the consumer's actor: it must see no dispatch_msg.
  auto dispatches = std::make_shared<int>(0);
  auto handle = sys.spawn([dispatches]() -> caf::behavior {
    return {[dispatches](dispatch_msg&) { ++*dispatches; }, [](lease_cancel_msg&) {}};
  });
  const core::consumer_id id{9};
  caf::anon_send(broker, join_msg{id, handle, sink});
  sched.run();
  for (const auto* queue : {"a", "b"}) {
    caf::anon_send(broker, subscribe_msg{id, queue});
    sched.run();
  }
  submit("b", "1");
  submit("a", "2");
  caf::anon_send(broker, consumer_update_msg{id, {}, 2, 0});
  sched.run();
  shutdown({handle, broker});  // first: a failed ASSERT would leave the system waiting for them
  std::map<std::string, std::string> by_queue;
  for (const auto& t : sink->delivered) by_queue[t.queue] = std::string(t.item.payload.view());
  EXPECT_EQ(by_queue, (std::map<std::string, std::string>{{"a", "2"}, {"b", "1"}})) << "each task named with its queue";
  EXPECT_EQ(*dispatches, 0) << "nothing went through the consumer's actor";
}

TEST_F(remote_consumer_test, a_turn_that_feeds_many_consumers_reaches_every_one) {
  constexpr int consumers = 150;
  // All the tasks reach the broker in one turn: a batch through an inbox, as the node submits.
  shutdown({broker});
  caf::actor inboxed;
  auto inbox = std::make_shared<submission_inbox>([&] { caf::anon_send(inboxed, drain_atom::value); });
  inboxed = broker = sys.spawn(broker_actor, core::broker_config{}, inbox, nullptr);
  std::vector<std::shared_ptr<recording_sink>> sinks;
  std::vector<caf::actor> actors;
  for (int i = 0; i < consumers; ++i) {
    sinks.push_back(std::make_shared<recording_sink>());
    actors.push_back(sys.spawn(remote_consumer_actor,
                               remote_consumer_config{core::consumer_id{100u + i}, broker, {"q"}, sinks.back(), true}));
  }
  sched.run();
  for (int i = 0; i < consumers; ++i) caf::anon_send(actors[i], remote_demand_msg{1});
  sched.run();
  std::vector<submission> batch;
  for (int i = 0; i < consumers; ++i)
    batch.push_back(submission{core::task_id{1000u + i}, core::task_spec{"q", core::bytes::copy_from("t"), {}}, nullptr});
  inbox->push_many(std::move(batch));
  sched.run();
  std::set<std::uint64_t> tasks;
  int fed = 0;
  for (const auto& s : sinks) {
    fed += s->delivered.size() == 1;
    for (const auto& t : s->delivered) {
      tasks.insert(t.item.id.value);
      EXPECT_EQ(t.queue, "q");
    }
  }
  actors.push_back(broker);
  for (const auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  sched.run();
  EXPECT_EQ(fed, consumers) << "every consumer got its one task";
  EXPECT_EQ(tasks.size(), static_cast<std::size_t>(consumers));
}
