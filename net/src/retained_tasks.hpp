#pragma once
// Handles of the tasks submitted over HTTP, so their outcomes stay readable
// after the broker forgot them. Bounded: the oldest are dropped first.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "drover/task_handle.hpp"

namespace drover::net {

class retained_tasks {
 public:
  explicit retained_tasks(std::size_t capacity) : capacity_(capacity) {}

  void add(const task_handle& h) {
    std::lock_guard lock(mutex_);
    const auto id = h.id().value;
    if (by_id_.emplace(id, h).second) order_.push_back(id);
    while (order_.size() > capacity_) {
      by_id_.erase(order_.front());
      order_.pop_front();
    }
  }

  std::optional<task_handle> find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, task_handle> by_id_;
  std::deque<std::uint64_t> order_;
};

}  // namespace drover::net
