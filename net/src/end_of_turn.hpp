#pragma once
// Work the gateway's I/O loop runs once a turn's ready handlers (and the
// hosted actors' run) are done (gateway.cpp, run_io, which sets `current`
// on its thread). A session's frames queued during a turn are written
// there, all in one burst, instead of waking its writer coroutine through
// asio's queue: a loop turn less between a task's arrival and its frame's
// send (docs/benchmarks.md).
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

namespace drover::net {

class end_of_turn {
 public:
  /// The loop's own, on its thread; null elsewhere.
  static inline thread_local end_of_turn* current = nullptr;

  void defer(std::function<void()> f) { due_.push_back(std::move(f)); }

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
};

/// `session` owns `link` (a member): a deferred write holds the session
/// only weakly and does nothing once its connection is gone.
/// Called once per record queued: a write already due costs nothing more
/// (no reference to the session taken, which was two atomic operations a
/// record).
template <class Session>
void request_write(Session& session, writer_link& link, bool closing) {
  if (link.write_now && !closing && end_of_turn::current) {
    if (std::exchange(link.write_due, true)) return;
    end_of_turn::current->defer([w = session.weak_from_this(), l = &link] {
      auto s = w.lock();
      if (!s) return;
      l->write_due = false;
      if (l->write_now) l->write_now();
    });
    return;
  }
  if (link.wake) link.wake->cancel();
}

}  // namespace drover::net
