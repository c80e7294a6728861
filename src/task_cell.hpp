#pragma once
// The shared state behind a task_handle: the broker reports into it (as the
// task's observer), submitters read, wait on or subscribe to it.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include <memory>

#include "broker_link.hpp"
#include "drover/task_handle.hpp"

namespace drover::detail {

class task_cell final : public core::task_observer {
 public:
  using callback = std::function<void(const completion&)>;

  task_cell(task_id id, std::shared_ptr<broker_link> link) : id_(id.value), link_(std::move(link)) {}

  task_id id() const { return task_id{id_.load(std::memory_order_acquire)}; }
  task_state state() const { return state_.load(std::memory_order_acquire); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  void cancel() { link_->cancel(id()); }

  void on_accepted(task_id id, bool, core::observer_tag) override { id_.store(id.value, std::memory_order_release); }
  void on_state(task_state s, std::uint16_t, core::observer_tag) override { state_.store(s, std::memory_order_release); }
  void on_outcome(const task_outcome& outcome, core::observer_tag) override {
    state_.store(outcome.state, std::memory_order_release);
    complete(completion(outcome));
  }
  void on_rejected(const core::error& why, core::observer_tag) override { complete(completion(why)); }

  void subscribe(callback fn) {
    {
      std::lock_guard lock(mutex_);
      if (!result_) {
        // The usual single subscriber needs no vector (no allocation).
        if (!first_callback_) first_callback_ = std::move(fn); else more_callbacks_.push_back(std::move(fn));
        return;
      }
    }
    fn(*result_);  // result_ never changes once set
  }

  completion wait() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return result_.has_value(); });
    return *result_;
  }

  std::optional<completion> wait_for(std::chrono::nanoseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return result_.has_value(); })) return std::nullopt;
    return *result_;
  }

 private:
  void complete(completion c) {
    callback first;
    std::vector<callback> more;
    {
      std::lock_guard lock(mutex_);
      if (result_) return;  // exactly one outcome
      result_.emplace(std::move(c));
      first.swap(first_callback_);
      more.swap(more_callbacks_);
      done_.store(true, std::memory_order_release);
    }
    changed_.notify_all();
    if (first) first(*result_);
    for (auto& fn : more) fn(*result_);
  }

  std::atomic<std::uint64_t> id_;
  std::atomic<task_state> state_{task_state::queued};
  std::atomic<bool> done_{false};
  std::shared_ptr<broker_link> link_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<completion> result_;
  callback first_callback_;
  std::vector<callback> more_callbacks_;
};

}  // namespace drover::detail
