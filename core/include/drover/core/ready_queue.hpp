#pragma once
// Ready tasks of one queue: one FIFO per priority and a bitmap of the
// non-empty ones, so push, pop-highest and erase are all O(1).
#include <array>
#include <bit>
#include <cstdint>

#include "drover/core/intrusive_list.hpp"
#include "drover/core/task_record.hpp"

namespace drover::core {

class ready_queue {
 public:
  static constexpr std::size_t levels = priority_max + 1;

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  void push(task_record& task) {
    lists_[task.priority].push_back(task);
    mark(task.priority, true);
    ++size_;
  }

  /// The oldest task of the highest non-empty priority.
  task_record* front() const {
    const int level = highest();
    return level < 0 ? nullptr : lists_[static_cast<std::size_t>(level)].front();
  }

  task_record* pop() {
    task_record* task = front();
    if (task) erase(*task);
    return task;
  }

  void erase(task_record& task) {
    auto& list = lists_[task.priority];
    list.erase(task);
    if (list.empty()) mark(task.priority, false);
    --size_;
  }

 private:
  static constexpr std::size_t words = levels / 64;

  void mark(std::uint8_t level, bool non_empty) {
    const std::uint64_t bit = std::uint64_t{1} << (level % 64);
    if (non_empty) bitmap_[level / 64] |= bit; else bitmap_[level / 64] &= ~bit;
  }

  int highest() const {
    for (std::size_t w = words; w-- > 0;) {
      if (bitmap_[w] != 0) return static_cast<int>(w * 64 + 63 - static_cast<std::size_t>(std::countl_zero(bitmap_[w])));
    }
    return -1;
  }

  std::array<intrusive_list<task_record>, levels> lists_{};
  std::array<std::uint64_t, words> bitmap_{};
  std::size_t size_ = 0;
};

}  // namespace drover::core
