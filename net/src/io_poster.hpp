#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/query.hpp>
#include <mutex>

namespace drover::net {

/// Posts to an I/O executor until closed; afterwards posts are dropped.
class io_poster {
 public:
  explicit io_poster(boost::asio::any_io_executor ex)
      : ex_(std::move(ex)), loop_(&boost::asio::query(ex_, boost::asio::execution::context)) {}
  template <class F>
  void post(F&& f) {
    std::lock_guard lock(mutex_);
    if (open_) boost::asio::post(ex_, std::forward<F>(f));
  }
  /// The loop whose thread this is (set by the gateway's I/O loop).
  static inline thread_local const void* current_loop = nullptr;

  /// Whether the caller runs on the executor's own thread.
  bool on_own_loop() const { return current_loop == loop_; }

  /// On the executor's own thread (an actor turn that the gateway's I/O
  /// loop hosts): runs `f` now, saving a trip through the loop's queue;
  /// from any other thread: posts it. Callers on one thread see their
  /// calls in order either way.
  template <class F>
  void run_here_or_post(F&& f) {
    if (current_loop != loop_) return post(std::forward<F>(f));
    bool open;
    {
      std::lock_guard lock(mutex_);
      open = open_;
    }
    // Not under the lock: `f` may post through this poster. What it touches
    // lives as long as the loop runs, and this is the loop's thread.
    if (open) f();
  }

  /// Runs `f` here and now unless closed: what it touches of the gateway is
  /// alive, since closing waits for it (the gateway closes before it goes).
  template <class F>
  void run_if_open(F&& f) {
    std::lock_guard lock(mutex_);
    if (open_) f();
  }
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }

 private:
  std::mutex mutex_;
  boost::asio::any_io_executor ex_;
  const void* loop_;  // the executor's execution context
  bool open_ = true;
};

}  // namespace drover::net
