#include "drover/actors/hosted_scheduler.hpp"

#include <cassert>

#include <caf/actor_cast.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/resumable.hpp>

namespace drover::actors {

hosted_scheduler::hosted_scheduler(caf::actor_system& sys) : abstract_coordinator(sys), unit_(sys, *this) {}

hosted_scheduler::~hosted_scheduler() { assert(!own_thread_.joinable() && !timer_thread_.joinable()); }

void hosted_scheduler::install(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
      [](caf::actor_system& sys) -> caf::actor_system::module* { return new hosted_scheduler(sys); });
}

hosted_scheduler* hosted_scheduler::of(caf::actor_system& sys) { return dynamic_cast<hosted_scheduler*>(&sys.scheduler()); }

void hosted_scheduler::start() {
  own_thread_ = std::thread([this] {
    caf::detail::set_thread_name("drover.actors");
    system().thread_started();
    own_loop();
    system().thread_terminates();
  });
  timer_thread_ = std::thread([this] {
    caf::detail::set_thread_name("caf.clock");
    system().thread_started();
    clock_.run_dispatch_loop();
    system().thread_terminates();
  });
  abstract_coordinator::start();  // the utility actors (CAF's printer, detached)
}

void hosted_scheduler::stop() {
  unhost();
  stop_actors();  // needs a thread running actors: the own thread still does
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  own_cv_.notify_one();
  own_thread_.join();
  clock_.cancel_dispatch_loop();  // before the clean-up: a timer enqueues nothing after it
  timer_thread_.join();
  for (auto* job : jobs_) cleanup_and_release(job);
  jobs_.clear();
}

void hosted_scheduler::host(std::function<void()> wake) {
  std::lock_guard lock(mutex_);
  host_wake_ = std::move(wake);
  host_woken_ = false;
  if (!jobs_.empty()) wake_locked();
}

void hosted_scheduler::unhost() {
  {
    std::lock_guard lock(mutex_);
    host_wake_ = nullptr;
    host_woken_ = false;
  }
  own_cv_.notify_one();
}

void hosted_scheduler::put_first(const caf::actor& actor) {
  const auto* job = dynamic_cast<const caf::resumable*>(caf::actor_cast<caf::abstract_actor*>(actor));
  assert(job && "an actor this scheduler runs is a resumable");
  std::lock_guard lock(mutex_);
  first_ = job;
}

void hosted_scheduler::queue_locked(caf::resumable* job) {
  if (job == first_)
    jobs_.push_front(job);
  else
    jobs_.push_back(job);
}

void hosted_scheduler::enqueue(caf::resumable* job) {
  assert(job != nullptr);
  bool notify_own;
  {
    std::lock_guard lock(mutex_);
    queue_locked(job);
    notify_own = !host_wake_;
    if (!notify_own) wake_locked();
  }
  if (notify_own) own_cv_.notify_one();
}

void hosted_scheduler::wake_locked() {
  if (host_woken_) return;  // one run() asked for is enough: it drains the queue
  host_woken_ = true;
  host_wake_();
}

void hosted_scheduler::push(caf::resumable* job) {
  std::lock_guard lock(mutex_);
  queue_locked(job);
}

caf::resumable* hosted_scheduler::pop(bool own_thread) {
  std::lock_guard lock(mutex_);
  // Once hosted, the own thread stops after the turn it is in.
  if (jobs_.empty() || (own_thread && host_wake_)) return nullptr;
  auto* job = jobs_.front();
  jobs_.pop_front();
  return job;
}

void hosted_scheduler::run(std::size_t budget) { run_turns(budget, false); }

void hosted_scheduler::run_turns(std::size_t budget, bool own_thread) {
  std::lock_guard running(run_mutex_);
  {
    std::lock_guard lock(mutex_);
    host_woken_ = false;  // what arrives from now on asks for the next run()
  }
  for (std::size_t turns = 0; turns < budget; ++turns) {
    auto* job = pop(own_thread);
    if (!job) break;
    resume(job);
  }
  // Out of budget, or the own thread stopping for a host: jobs the turns
  // scheduled (exec_later rings no one) need the next run asked for.
  std::lock_guard lock(mutex_);
  if (jobs_.empty()) return;
  if (host_wake_)
    wake_locked();
  else
    own_cv_.notify_one();
}

void hosted_scheduler::resume(caf::resumable* job) {
  switch (job->resume(&unit_, max_throughput_)) {
    case caf::resumable::resume_later:
      push(job);  // keeps its reference: it stays scheduled
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      // A message arriving later enqueues it again with a new reference.
      intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit:
      // Only a scheduler's own shutdown job answers so; this one has none.
      assert(false);
      break;
  }
}

void hosted_scheduler::own_loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      own_cv_.wait(lock, [this] { return stopping_ || (!host_wake_ && !jobs_.empty()); });
      if (stopping_) return;
    }
    run_turns(64, true);
  }
}

}  // namespace drover::actors
