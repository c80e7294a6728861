#pragma once
// A hashed timing wheel whose entries are the owners themselves (intrusive
// links, a due time and a slot number in the owner): schedule and cancel are
// O(1) and a cancelled timer leaves nothing behind, so the wheel never holds
// more entries than there are armed owners. Never fires early; fires at most
// one resolution late.
#include <bit>
#include <cassert>
#include <cstdint>
#include <optional>
#include <vector>

#include "drover/core/slot_bitmap.hpp"
#include "drover/core/time.hpp"

namespace drover::core {

/// The fields an owner embeds to sit in an intrusive_timer_wheel.
template <class T>
struct timer_hook {
  time_point due = time_never;
  std::uint32_t slot = UINT32_MAX;  // UINT32_MAX = not armed
  T* prev = nullptr;
  T* next = nullptr;
};

template <class T, timer_hook<T> T::*Hook>
class intrusive_timer_wheel {
 public:
  intrusive_timer_wheel(duration resolution, std::size_t slot_count, time_point start)
      : resolution_(resolution.count()), slots_(slot_count + 1), occupied_(slot_count),
        current_tick_(start.time_since_epoch().count() / resolution.count()) {
    assert(resolution.count() > 0);
    assert(std::has_single_bit(slot_count) && slot_count >= 64);
  }

  std::size_t size() const { return size_; }
  static bool armed(const T& owner) { return (owner.*Hook).slot != UINT32_MAX; }
  static time_point due_of(const T& owner) { return (owner.*Hook).due; }

  void schedule(T& owner, time_point due) {
    auto& hook = owner.*Hook;
    assert(hook.slot == UINT32_MAX && "already armed");
    hook.due = due;
    const std::int64_t tick = ceil_tick(due);
    hook.slot = tick <= current_tick_ ? overdue_slot() : slot_of(tick);
    list(hook.slot).push_back(owner);
    mark(hook.slot);
    ++size_;
  }

  void cancel(T& owner) {
    auto& hook = owner.*Hook;
    if (hook.slot == UINT32_MAX) return;
    const auto slot = hook.slot;
    list(slot).erase(owner);
    if (list(slot).empty()) unmark(slot);
    hook.slot = UINT32_MAX;
    --size_;
  }

  /// Unlinks and hands to `fire` every owner due at or before `now`.
  template <class Fire>
  std::size_t advance(time_point now, Fire&& fire) {
    const std::int64_t target = now.time_since_epoch().count() / resolution_;
    std::size_t fired = fire_slot(overdue_slot(), INT64_MAX, fire);
    if (target <= current_tick_) return fired;
    const auto n = static_cast<std::int64_t>(slot_count());
    const std::int64_t span = target - current_tick_;
    const std::int64_t first = span >= n ? target + 1 : current_tick_ + 1;
    const std::int64_t visits = span >= n ? n : span;
    current_tick_ = target;  // before firing: owners re-armed by `fire` land correctly
    for (std::int64_t t = first; t < first + visits; ++t) fired += fire_slot(slot_of(t), target, fire);
    return fired;
  }

  /// The first tick boundary at or after the earliest due time (an owner of a
  /// later rotation may make it early: advance, then ask again).
  std::optional<time_point> next_due() const {
    if (size_ == 0) return std::nullopt;
    if (!slots_[overdue_slot()].empty()) return tick_time(current_tick_);
    const auto distance = occupied_.distance_to_next(slot_of(current_tick_ + 1));
    assert(distance);
    return tick_time(current_tick_ + 1 + static_cast<std::int64_t>(*distance));
  }

 private:
  std::size_t slot_count() const { return slots_.size() - 1; }
  std::uint32_t overdue_slot() const { return static_cast<std::uint32_t>(slot_count()); }
  std::uint32_t slot_of(std::int64_t tick) const {
    return static_cast<std::uint32_t>(static_cast<std::uint64_t>(tick) & (slot_count() - 1));
  }
  std::int64_t ceil_tick(time_point t) const {
    const auto ns = t.time_since_epoch().count();
    return ns / resolution_ + (ns % resolution_ != 0 ? 1 : 0);
  }
  time_point tick_time(std::int64_t tick) const { return time_point{duration{tick * resolution_}}; }

  void mark(std::uint32_t slot) {
    if (slot < slot_count()) occupied_.set(slot);
  }
  void unmark(std::uint32_t slot) {
    if (slot < slot_count()) occupied_.clear(slot);
  }

  struct hook_list {
    T* head = nullptr;
    T* tail = nullptr;
    std::size_t size = 0;
    bool empty() const { return head == nullptr; }
    void push_back(T& x) {
      auto& h = x.*Hook;
      assert(!h.prev && !h.next && head != &x);
      h.prev = tail;
      if (tail) (tail->*Hook).next = &x; else head = &x;
      tail = &x;
      ++size;
    }
    void erase(T& x) {
      auto& h = x.*Hook;
      if (h.prev) (h.prev->*Hook).next = h.next; else head = h.next;
      if (h.next) (h.next->*Hook).prev = h.prev; else tail = h.prev;
      h.prev = h.next = nullptr;
      --size;
    }
  };

  hook_list& list(std::uint32_t slot) { return slots_[slot]; }

  template <class Fire>
  std::size_t fire_slot(std::uint32_t slot, std::int64_t target, Fire& fire) {
    auto& l = slots_[slot];
    std::size_t fired = 0;
    // Collect first: `fire` may re-arm owners into this very slot.
    std::vector<T*> due;
    for (T* x = l.head; x; x = (x->*Hook).next)
      if (ceil_tick((x->*Hook).due) <= target) due.push_back(x);
    for (T* x : due) {
      cancel(*x);
      fire(*x);
      ++fired;
    }
    return fired;
  }

  std::int64_t resolution_;
  std::vector<hook_list> slots_;  // the last one holds owners already due when scheduled
  slot_bitmap occupied_;
  std::int64_t current_tick_;
  std::size_t size_ = 0;
};

}  // namespace drover::core
