#pragma once
// The most recent values by task id, bounded: adding beyond the capacity
// forgets the oldest first. Thread-safe (written on the broker's thread,
// read on the I/O thread). What the gateway keeps of ended tasks: handles
// of HTTP submits, outcomes of acknowledged client submits.
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace drover::net {

template <class Value>
class recent_by_id {
 public:
  explicit recent_by_id(std::size_t capacity) : capacity_(capacity) {}

  void add(std::uint64_t id, const Value& v) {
    std::lock_guard lock(mutex_);
    if (by_id_.insert_or_assign(id, v).second) order_.push_back(id);
    while (order_.size() > capacity_) {
      by_id_.erase(order_.front());
      order_.pop_front();
    }
  }

  std::optional<Value> find(std::uint64_t id) const {
    std::lock_guard lock(mutex_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, Value> by_id_;
  std::deque<std::uint64_t> order_;
};

}  // namespace drover::net
