#pragma once
// A hashed timing wheel: schedule is O(1), advancing touches only the slots
// whose ticks passed. Entries are never cancelled in place; the owner checks
// on firing whether an entry still applies (lazy cancellation), which keeps
// the wheel free of back-pointers into task records.
#include <bit>
#include <cassert>
#include <cstdint>
#include <optional>
#include <vector>

#include "drover/core/slot_bitmap.hpp"
#include "drover/core/time.hpp"

namespace drover::core {

template <class Entry>  // Entry has a `time_point due` member
class timer_wheel {
 public:
  timer_wheel(duration resolution, std::size_t slot_count, time_point start)
      : resolution_(resolution.count()), slots_(slot_count), occupied_(slot_count),
        current_tick_(start.time_since_epoch().count() / resolution.count()) {
    assert(resolution.count() > 0);
    assert(std::has_single_bit(slot_count) && slot_count >= 64);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  void schedule(Entry entry) {
    const std::int64_t tick = ceil_tick(entry.due);
    ++size_;
    if (tick <= current_tick_) {
      overdue_.push_back(stored{tick, std::move(entry)});
      return;
    }
    const std::size_t slot = slot_of(tick);
    slots_[slot].push_back(stored{tick, std::move(entry)});
    occupied_.set(slot);
  }

  /// Fires, in no particular order, every entry due at or before `now`.
  template <class Fire>
  std::size_t advance(time_point now, Fire&& fire) {
    const std::int64_t target = floor_tick(now);
    std::size_t fired = fire_all(overdue_, fire);
    if (target > current_tick_) {
      const std::int64_t span = target - current_tick_;
      const std::int64_t visits = span >= static_cast<std::int64_t>(slots_.size())
                                      ? static_cast<std::int64_t>(slots_.size()) : span;
      const std::int64_t first = span >= static_cast<std::int64_t>(slots_.size()) ? target + 1 : current_tick_ + 1;
      current_tick_ = target;  // before firing: entries a callback schedules land correctly
      for (std::int64_t t = first; t < first + visits; ++t) fired += fire_slot(slot_of(t), target, fire);
    }
    return fired;
  }

  /// When to advance next: the first tick boundary at or after the earliest
  /// entry's due time (so at most one resolution late, never early); nothing
  /// when empty. An entry of a later rotation may make this early: the owner
  /// then advances, finds nothing due, and asks again.
  std::optional<time_point> next_due() const {
    if (size_ == 0) return std::nullopt;
    if (!overdue_.empty()) return tick_time(current_tick_);
    const auto distance = occupied_.distance_to_next(slot_of(current_tick_ + 1));
    assert(distance);
    return tick_time(current_tick_ + 1 + static_cast<std::int64_t>(*distance));
  }

 private:
  struct stored {
    std::int64_t tick;
    Entry entry;
  };

  std::int64_t floor_tick(time_point t) const { return t.time_since_epoch().count() / resolution_; }
  std::int64_t ceil_tick(time_point t) const {
    const auto ns = t.time_since_epoch().count();
    return ns / resolution_ + (ns % resolution_ != 0 ? 1 : 0);
  }
  time_point tick_time(std::int64_t tick) const { return time_point{duration{tick * resolution_}}; }
  std::size_t slot_of(std::int64_t tick) const { return static_cast<std::size_t>(tick) & (slots_.size() - 1); }

  template <class Fire>
  std::size_t fire_all(std::vector<stored>& list, Fire& fire) {
    if (list.empty()) return 0;
    std::vector<stored> due;
    due.swap(list);
    size_ -= due.size();
    for (auto& s : due) fire(s.entry);
    return due.size();
  }

  template <class Fire>
  std::size_t fire_slot(std::size_t slot, std::int64_t target, Fire& fire) {
    auto& list = slots_[slot];
    if (list.empty()) return 0;
    std::vector<stored> due;
    std::size_t kept = 0;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (list[i].tick <= target) {
        due.push_back(std::move(list[i]));
      } else {
        if (i != kept) list[kept] = std::move(list[i]);
        ++kept;
      }
    }
    list.resize(kept);
    if (kept == 0) occupied_.clear(slot);
    size_ -= due.size();
    for (auto& s : due) fire(s.entry);
    return due.size();
  }

  std::int64_t resolution_;
  std::vector<std::vector<stored>> slots_;
  slot_bitmap occupied_;
  std::vector<stored> overdue_;
  std::int64_t current_tick_;
  std::size_t size_ = 0;
};

}  // namespace drover::core
