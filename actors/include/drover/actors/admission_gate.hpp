#pragma once
// Backpressure for submitters: a node holds at most max_tasks live tasks and
// max_bytes of their payloads. Submitters reserve room here before their
// submission enters the inbox (fail at once, or wait); the broker publishes
// its live counts after every turn, which frees room and wakes waiters.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace drover::actors {

class admission_gate {
 public:
  admission_gate(std::size_t max_tasks, std::size_t max_bytes)
      : max_tasks_(static_cast<std::int64_t>(max_tasks)), max_bytes_(static_cast<std::int64_t>(max_bytes)) {}

  /// Reserves room for `count` submissions of `bytes` in all, or none.
  bool try_admit(std::size_t bytes, std::size_t count = 1) {
    const auto b = static_cast<std::int64_t>(bytes);
    const auto n = static_cast<std::int64_t>(count);
    const auto tasks = reserved_tasks_.fetch_add(n, std::memory_order_acq_rel) + n;
    const auto total = reserved_bytes_.fetch_add(b, std::memory_order_acq_rel) + b;
    if (tasks + live_tasks_.load(std::memory_order_acquire) <= max_tasks_ &&
        total + live_bytes_.load(std::memory_order_acquire) <= max_bytes_)
      return true;
    reserved_tasks_.fetch_sub(n, std::memory_order_acq_rel);
    reserved_bytes_.fetch_sub(b, std::memory_order_acq_rel);
    return false;
  }

  /// Blocks the calling thread until room for `count` submissions of
  /// `bytes` in all is reserved.
  void admit_waiting(std::size_t bytes, std::size_t count = 1) {
    if (try_admit(bytes, count)) return;
    std::unique_lock lock(mutex_);
    waiters_.fetch_add(1, std::memory_order_acq_rel);
    room_.wait(lock, [&] { return try_admit(bytes, count); });
    waiters_.fetch_sub(1, std::memory_order_acq_rel);
  }

  /// Calls `retry` once room may have freed (from the broker's thread).
  void on_room(std::function<void()> retry) {
    std::lock_guard lock(mutex_);
    waiters_.fetch_add(1, std::memory_order_acq_rel);
    async_waiters_.push_back(std::move(retry));
  }

  /// The broker took `tasks`/`bytes` reserved submissions out of the inbox
  /// and now holds `live_tasks`/`live_bytes`. Called after every turn.
  void settle(std::size_t tasks, std::size_t bytes, std::size_t live_tasks, std::size_t live_bytes) {
    live_tasks_.store(static_cast<std::int64_t>(live_tasks), std::memory_order_release);
    live_bytes_.store(static_cast<std::int64_t>(live_bytes), std::memory_order_release);
    if (tasks > 0) {
      reserved_tasks_.fetch_sub(static_cast<std::int64_t>(tasks), std::memory_order_acq_rel);
      reserved_bytes_.fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_acq_rel);
    }
    if (waiters_.load(std::memory_order_acquire) == 0) return;
    std::vector<std::function<void()>> retry;
    {
      std::lock_guard lock(mutex_);
      retry.swap(async_waiters_);
      waiters_.fetch_sub(static_cast<int>(retry.size()), std::memory_order_acq_rel);
    }
    room_.notify_all();
    for (auto& fn : retry) fn();
  }

  std::size_t live_tasks() const { return static_cast<std::size_t>(live_tasks_.load(std::memory_order_acquire)); }

 private:
  const std::int64_t max_tasks_;
  const std::int64_t max_bytes_;
  std::atomic<std::int64_t> reserved_tasks_{0};  // admitted, not yet taken by the broker
  std::atomic<std::int64_t> reserved_bytes_{0};
  std::atomic<std::int64_t> live_tasks_{0};      // published by the broker
  std::atomic<std::int64_t> live_bytes_{0};
  std::atomic<int> waiters_{0};
  std::mutex mutex_;
  std::condition_variable room_;
  std::vector<std::function<void()>> async_waiters_;
};

}  // namespace drover::actors
