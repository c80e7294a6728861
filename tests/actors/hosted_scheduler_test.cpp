// Actors of a hosted_scheduler run on its own thread until a loop hosts
// them, then only when that loop runs them, on the loop's thread; unhosting
// hands pending work back to the own thread.
#include "drover/actors/hosted_scheduler.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>

using namespace drover::actors;
using namespace std::chrono_literals;

namespace {

/// Where and how often the probe actor ran.
struct ledger {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::thread::id> threads;

  void note() {
    {
      std::lock_guard lock(mutex);
      threads.push_back(std::this_thread::get_id());
    }
    changed.notify_all();
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return threads.size();
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return threads.size() >= n; });
  }
  std::thread::id last() {
    std::lock_guard lock(mutex);
    return threads.back();
  }
};

caf::behavior probe(caf::event_based_actor*, ledger* book) {
  return {[book](int) { book->note(); }};
}

struct hosted_system {
  caf::actor_system_config config = [] {
    caf::actor_system_config c;
    hosted_scheduler::install(c);
    return c;
  }();
  caf::actor_system system{config};
  hosted_scheduler& scheduler = *hosted_scheduler::of(system);
  // Also when a test stops early: the system's shutdown needs a thread
  // that runs its actors.
  ~hosted_system() { scheduler.unhost(); }
};

}  // namespace

TEST(hosted_scheduler, runs_actors_on_its_own_thread_while_unhosted) {
  ledger book;
  hosted_system s;
  auto actor = s.system.spawn(probe, &book);
  caf::anon_send(actor, 1);
  ASSERT_TRUE(book.wait_for(1, 5s));
  EXPECT_NE(book.last(), std::this_thread::get_id());
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, hosted_actors_run_when_and_where_the_host_runs_them) {
  ledger book;
  hosted_system s;
  std::atomic<int> wakes{0};
  // Hosted before the spawn: no turn of this actor is on the own thread
  // (a message arriving during such a turn would be taken in it).
  s.scheduler.host([&] { ++wakes; });
  auto actor = s.system.spawn(probe, &book);
  caf::anon_send(actor, 1);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(book.count(), 0u) << "nothing runs the actor until the host does";
  EXPECT_GE(wakes.load(), 1);
  s.scheduler.run(16);
  ASSERT_EQ(book.count(), 1u);
  EXPECT_EQ(book.last(), std::this_thread::get_id()) << "the host's thread ran it";
  s.scheduler.unhost();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, one_wake_per_run_however_many_messages_arrive) {
  ledger book;
  hosted_system s;
  auto actor = s.system.spawn(probe, &book);
  std::atomic<int> wakes{0};
  s.scheduler.host([&] { ++wakes; });
  s.scheduler.run(16);  // the spawn's first turn
  wakes = 0;
  for (int i = 0; i < 10; ++i) caf::anon_send(actor, i);
  EXPECT_EQ(wakes.load(), 1) << "the host was asked once; its run takes them all";
  s.scheduler.run(16);
  EXPECT_EQ(book.count(), 10u);
  s.scheduler.unhost();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, a_run_out_of_budget_asks_the_host_again) {
  ledger book;
  hosted_system s;
  std::vector<caf::actor> actors;
  for (int i = 0; i < 3; ++i) actors.push_back(s.system.spawn(probe, &book));
  std::atomic<int> wakes{0};
  s.scheduler.host([&] { ++wakes; });
  s.scheduler.run(64);  // the spawns' first turns
  for (auto& a : actors) caf::anon_send(a, 1);
  wakes = 0;
  s.scheduler.run(1);
  EXPECT_EQ(book.count(), 1u) << "one turn: one actor";
  EXPECT_EQ(wakes.load(), 1) << "work is left, so the host is asked for another run";
  s.scheduler.run(64);
  EXPECT_EQ(book.count(), 3u);
  s.scheduler.unhost();
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, the_job_put_first_runs_before_those_queued_ahead_of_it) {
  std::vector<int> ran;
  auto recorder = [&ran](caf::event_based_actor*, int name) -> caf::behavior {
    return {[&ran, name](int) { ran.push_back(name); }};
  };
  hosted_system s;
  std::vector<caf::actor> actors;
  for (int name = 0; name < 3; ++name) actors.push_back(s.system.spawn(recorder, name));
  s.scheduler.host([] {});
  s.scheduler.run(64);  // the spawns' first turns
  s.scheduler.put_first(actors[2]);
  for (auto& a : actors) caf::anon_send(a, 1);  // the one put first is scheduled last
  s.scheduler.run(1);
  EXPECT_EQ(ran, std::vector<int>{2}) << "the first turn is the job put first";
  s.scheduler.run(64);
  EXPECT_EQ(ran, (std::vector<int>{2, 0, 1})) << "the others in their order";
  s.scheduler.unhost();
  for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, unhosting_hands_pending_work_to_the_own_thread) {
  ledger book;
  hosted_system s;
  s.scheduler.host([] {});  // a host that never runs anything
  auto actor = s.system.spawn(probe, &book);
  caf::anon_send(actor, 1);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(book.count(), 0u);
  s.scheduler.unhost();
  ASSERT_TRUE(book.wait_for(1, 5s)) << "the own thread took the pending message";
  EXPECT_NE(book.last(), std::this_thread::get_id());
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, delayed_messages_reach_hosted_actors) {
  ledger book;
  hosted_system s;
  auto actor = s.system.spawn(probe, &book);
  std::mutex m;
  std::condition_variable woken;
  bool wake = false;
  s.scheduler.host([&] {
    std::lock_guard lock(m);
    wake = true;
    woken.notify_all();
  });
  s.scheduler.run(16);
  wake = false;
  caf::delayed_anon_send(actor, std::chrono::milliseconds(20), 1);
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(woken.wait_for(lock, 5s, [&] { return wake; })) << "the clock's thread woke the host";
  }
  s.scheduler.run(16);
  EXPECT_EQ(book.count(), 1u);
  s.scheduler.unhost();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

TEST(hosted_scheduler, work_a_last_own_thread_turn_schedules_as_a_host_takes_over_reaches_the_host) {
  // Regression: the own thread stopped for the host without asking it to run
  // what its last turn had scheduled (exec_later rings no one): stranded.
  ledger book;
  hosted_system s;
  auto b = s.system.spawn(probe, &book);
  std::promise<void> in_turn, hosted;
  auto hosted_seen = hosted.get_future().share();
  auto a = s.system.spawn([&](caf::event_based_actor* self) -> caf::behavior {
    return {[=, &in_turn](int) {
      in_turn.set_value();
      hosted_seen.wait();  // the host takes over during this turn
      self->send(b, 1);    // scheduled from the turn: no wake-up of its own
    }};
  });
  caf::anon_send(a, 1);
  in_turn.get_future().wait();
  std::atomic<int> wakes{0};
  s.scheduler.host([&] { ++wakes; });
  hosted.set_value();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (wakes.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_GE(wakes.load(), 1) << "the host was asked to run what the last turn scheduled";
  s.scheduler.run(16);
  EXPECT_EQ(book.count(), 1u);
  s.scheduler.unhost();
  caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(b, caf::exit_reason::user_shutdown);
}
