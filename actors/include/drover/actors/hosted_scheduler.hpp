#pragma once
// A CAF scheduler with one execution thread, which another loop may host.
//
// In `drover serve` the gateway's I/O thread hosts it: the broker and the
// runtimes' consumer actors then run on the thread that reads and writes
// their sockets, so a submit becomes a task frame, and a result an outcome,
// without a hand-over between threads (each costs a wake-up of tens of
// microseconds on a VM, and a spinning thread to avoid it costs a core;
// docs/architecture.md). While no loop hosts it, the scheduler's own thread
// runs the actors, so a node works the same before a gateway starts and
// after it stops.
//
// CAF 0.17 takes a scheduler from `actor_system_config::module_factories`
// (`install`); it keeps CAF's contract for jobs: an enqueued actor carries a
// reference, which a turn ending in `done` or `awaiting_message` releases.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace drover::actors {

class hosted_scheduler final : public caf::scheduler::abstract_coordinator {
 public:
  explicit hosted_scheduler(caf::actor_system& sys);
  ~hosted_scheduler() override;

  /// Makes the system built from `cfg` use a hosted_scheduler.
  static void install(caf::actor_system_config& cfg);
  /// The system's scheduler if it is a hosted_scheduler, else nullptr.
  static hosted_scheduler* of(caf::actor_system& sys);

  /// From now on the host runs the actors: `wake` (called from any thread,
  /// under a lock: it must only post, never run actors itself) asks the
  /// host's thread to call run() soon.
  void host(std::function<void()> wake);
  /// The scheduler's own thread takes the actors back. Call it before the
  /// host's loop stops; a run() it had already been asked for may still
  /// come and is harmless (one thread runs actors at a time).
  void unhost();
  /// On the host's thread: runs up to `budget` actor turns, then asks for
  /// another run() if work is left, so the host's own I/O interleaves.
  void run(std::size_t budget);

  /// `actor` (the broker) goes ahead of the others whenever it is
  /// scheduled: with thousands of consumer actors queued, its turn (results
  /// in, outcomes out) would otherwise wait behind all of them. Its job is
  /// compared only, never used.
  void put_first(const caf::actor& actor);

  void enqueue(caf::resumable* job) override;
  caf::detail::thread_safe_actor_clock& clock() noexcept override { return clock_; }

 protected:
  void start() override;
  void stop() override;

 private:
  class unit final : public caf::execution_unit {
   public:
    unit(caf::actor_system& sys, hosted_scheduler& parent) : caf::execution_unit(&sys), parent_(parent) {}
    // An actor sending from its own turn: the job joins the queue; the run
    // in progress (or the one it asks for when out of budget) takes it.
    void exec_later(caf::resumable* job) override { parent_.push(job); }

   private:
    hosted_scheduler& parent_;
  };

  void push(caf::resumable* job);
  void queue_locked(caf::resumable* job);
  caf::resumable* pop(bool own_thread);
  void run_turns(std::size_t budget, bool own_thread);
  void resume(caf::resumable* job);
  void own_loop();
  void wake_locked();

  unit unit_;
  std::mutex run_mutex_;  // one thread runs actor turns at a time
  std::mutex mutex_;      // guards what follows
  const caf::resumable* first_ = nullptr;
  std::condition_variable own_cv_;
  std::deque<caf::resumable*> jobs_;
  std::function<void()> host_wake_;  // empty: the own thread runs the actors
  bool host_woken_ = false;          // a run() was asked of the host and has not begun
  bool stopping_ = false;
  std::thread own_thread_;
  caf::detail::thread_safe_actor_clock clock_;
  std::thread timer_thread_;
};

}  // namespace drover::actors
