#pragma once
// The executor of a worker pool's coroutine handlers. Work submitted while
// the pool is running its turn (on whatever CAF worker thread that is)
// runs in that same turn: a handler starts where its dispatch arrived, and
// a no-op handler finishes without any thread hop. Work submitted from
// another thread (an asio timer firing on the I/O thread) is queued and the
// pool is woken with one message, however many items queue up meanwhile.
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include <asio/execution.hpp>
#include <asio/execution_context.hpp>

#include "drover/actors/unique_function.hpp"

namespace drover::actors {

class pool_context {
 public:
  /// `services` hosts asio's timer and socket services for handlers that use
  /// them (its run loop is the node's I/O thread); `wake` asks the pool to
  /// run a turn and is called at most once per batch of foreign posts.
  pool_context(asio::execution_context& services, std::function<void()> wake = {})
      : services_(services), wake_(std::move(wake)) {}

  /// Set once by the pool that runs this context, before any post.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }
  pool_context(const pool_context&) = delete;
  pool_context& operator=(const pool_context&) = delete;

  asio::execution_context& services() const { return services_; }
  bool running_in_this_thread() const { return current_ == this; }

  void post(unique_function fn) {
    if (running_in_this_thread()) {
      local_.push_back(std::move(fn));
      return;
    }
    bool wake_needed;
    {
      std::lock_guard lock(mutex_);
      // After the pool is gone work is dropped: destroying it releases what
      // it owns (asio destroys an unfinished coroutine this way).
      if (closed_) return;
      foreign_.push_back(std::move(fn));
      wake_needed = !wake_pending_;
      wake_pending_ = true;
    }
    if (wake_needed) wake_();
  }

  /// The pool is gone: drop queued work and all work posted from now on.
  void close() {
    std::vector<unique_function> dropped_local, dropped_foreign;
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      dropped_foreign.swap(foreign_);
    }
    dropped_local.swap(local_);
  }  // destroyed here, outside the lock: their destructors may post again

  /// Runs queued work until none is left; called by the pool during its turn.
  std::size_t drain() {
    std::size_t ran = 0;
    for (;;) {
      while (!local_.empty()) {
        std::vector<unique_function> batch;
        batch.swap(local_);
        for (auto& fn : batch) fn();
        ran += batch.size();
      }
      std::vector<unique_function> foreign;
      {
        std::lock_guard lock(mutex_);
        foreign.swap(foreign_);
        wake_pending_ = false;
      }
      if (foreign.empty()) return ran;
      for (auto& fn : foreign) fn();
      ran += foreign.size();
    }
  }

  /// Marks the calling thread as running this pool's turn for its lifetime.
  class turn {
   public:
    explicit turn(pool_context& ctx) : previous_(current_) { current_ = &ctx; }
    ~turn() { current_ = previous_; }
    turn(const turn&) = delete;
    turn& operator=(const turn&) = delete;

   private:
    pool_context* previous_;
  };

 private:
  static inline thread_local pool_context* current_ = nullptr;

  asio::execution_context& services_;
  std::function<void()> wake_;
  std::vector<unique_function> local_;  // touched only during a turn
  std::mutex mutex_;
  std::vector<unique_function> foreign_;
  bool wake_pending_ = false;
  bool closed_ = false;
};

/// A plain pointer to its context: asio copies executors many times per
/// coroutine, and a shared_ptr here cost ~10 % of throughput. Lifetime rule:
/// an unfinished coroutine can outlive its pool (its pending operation holds
/// it), and asio posts its destruction to this executor, so whoever owns the
/// asio services the handlers use (the node's io_context) must keep the
/// pool_context alive until those services are destroyed (pool_config::context).
class pool_executor {
 public:
  explicit pool_executor(pool_context& ctx, bool never_blocking = false) noexcept
      : ctx_(&ctx), never_blocking_(never_blocking) {}

  asio::execution_context& query(asio::execution::context_t) const noexcept { return ctx_->services(); }
  asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept {
    return never_blocking_ ? asio::execution::blocking_t(asio::execution::blocking.never)
                           : asio::execution::blocking_t(asio::execution::blocking.possibly);
  }
  pool_executor require(asio::execution::blocking_t::never_t) const noexcept { return pool_executor(*ctx_, true); }
  pool_executor require(asio::execution::blocking_t::possibly_t) const noexcept { return pool_executor(*ctx_, false); }

  template <class F>
  void execute(F&& f) const {
    if (!never_blocking_ && ctx_->running_in_this_thread()) {
      std::forward<F>(f)();
      return;
    }
    ctx_->post(unique_function(std::forward<F>(f)));
  }

  friend bool operator==(const pool_executor& a, const pool_executor& b) noexcept {
    return a.ctx_ == b.ctx_ && a.never_blocking_ == b.never_blocking_;
  }
  friend bool operator!=(const pool_executor& a, const pool_executor& b) noexcept { return !(a == b); }

 private:
  pool_context* ctx_;
  bool never_blocking_;
};

}  // namespace drover::actors
