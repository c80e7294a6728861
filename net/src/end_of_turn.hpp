#pragma once
// Work the gateway's I/O loop runs once a turn's ready handlers (and the
// hosted actors' run) are done (gateway.cpp, run_io, which sets `current`
// on its thread). A session's frames queued during a turn are written
// there, all in one burst, instead of waking its writer coroutine through
// asio's queue: a loop turn less between a task's arrival and its frame's
// send (docs/benchmarks.md).
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "drover/actors/unique_function.hpp"

namespace drover::net {

class end_of_turn {
 public:
  /// The loop's own, on its thread; null elsewhere.
  static inline thread_local end_of_turn* current = nullptr;

  void defer(std::function<void()> f) { due_.push_back(std::move(f)); }
  /// Work that may wait while the loop is busy (run_io decides when).
  void defer_lazily(std::function<void()> f) { lazy_.push_back(std::move(f)); }
  bool has_lazy() const { return !lazy_.empty(); }
  /// Runs the work deferred lazily, then what it deferred in turn.
  void run_lazy() {
    lazy_running_.swap(lazy_);
    for (auto& f : lazy_running_) f();
    lazy_running_.clear();
    run();
  }

  /// Work the loop runs a little per turn, oldest first (run_paced): a
  /// broker turn that fed thousands of sessions (capacity-1 runtimes) then
  /// does not write all their task frames in one burst, which made the
  /// node and its runtimes move in lock-step waves; reads come in between,
  /// as they did when each session's consumer actor took a turn of its own.
  void defer_paced(actors::unique_function f) { paced_.push_back(std::move(f)); }
  /// Runs up to `n` of the paced work, oldest first; true if any ran. What
  /// it defers lands behind the rest, so a session's work keeps its order.
  bool run_paced(std::size_t n) {
    if (paced_.empty()) return false;
    for (; n > 0 && !paced_.empty(); --n) {
      auto f = std::move(paced_.front());
      paced_.pop_front();
      f();
    }
    return true;
  }

  /// Runs what was deferred (and what that defers in turn); true if anything ran.
  bool run() {
    bool ran = false;
    while (!due_.empty()) {
      running_.swap(due_);
      for (auto& f : running_) f();
      running_.clear();
      ran = true;
    }
    return ran;
  }

 private:
  std::vector<std::function<void()>> due_, running_;  // two, so that their capacity is kept
  std::vector<std::function<void()>> lazy_, lazy_running_;
  std::deque<actors::unique_function> paced_;
};

/// A session's way to its connection's writer: a queued frame is written at
/// the end of the turn by the connection's `write_now` when the session is
/// on the loop's thread and not closing (once per turn however many frames
/// were queued), else the writer coroutine is woken (its `wake` timer
/// cancelled). `write_now` is set while a connection is attached and
/// cleared before the connection's stream goes.
struct writer_link {
  boost::asio::steady_timer* wake = nullptr;
  std::function<void()> write_now;
  bool write_due = false;
  bool due_lazily = false;  // the write due may wait while the loop is busy
};

/// `session` owns `link` (a member): a deferred write holds the session
/// only weakly and does nothing once its connection is gone.
/// Called once per record queued: a write already due costs nothing more
/// (no reference to the session taken, which was two atomic operations a
/// record). `lazy`: the write may wait while the loop is busy
/// (end_of_turn::defer_lazily); a later eager request makes it due at the
/// end of this turn.
template <class Session>
void request_write(Session& session, writer_link& link, bool closing, bool lazy = false) {
  if (link.write_now && !closing && end_of_turn::current) {
    if (link.write_due && (lazy || !link.due_lazily)) return;
    link.write_due = true;
    link.due_lazily = lazy;
    auto write = [w = session.weak_from_this(), l = &link] {
      auto s = w.lock();
      if (!s || !l->write_due) return;  // written already (an eager request overtook a lazy one)
      l->write_due = l->due_lazily = false;
      if (l->write_now) l->write_now();
    };
    if (lazy) {
      end_of_turn::current->defer_lazily(std::move(write));
    } else {
      end_of_turn::current->defer(std::move(write));
    }
    return;
  }
  if (link.wake) link.wake->cancel();
}

}  // namespace drover::net
