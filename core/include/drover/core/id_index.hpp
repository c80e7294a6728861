#pragma once
// task_id -> slot, open addressing with linear probing and backward-shift
// deletion (no tombstones). 12 bytes per bucket, at most 3/4 full.
#include <bit>
#include <cassert>
#include <cstdint>
#include <functional>
#include <vector>

#include "drover/core/ids.hpp"

namespace drover::core {

class id_index {
 public:
  static constexpr std::uint32_t npos = UINT32_MAX;

  id_index() { rehash(1024); }

  std::size_t size() const { return size_; }

  /// Inserts id -> slot; false if the id is present already.
  bool insert(task_id id, std::uint32_t slot) {
    assert(id.valid());
    if ((size_ + 1) * 4 > keys_.size() * 3) rehash(keys_.size() * 2);
    std::size_t i = home(id);
    while (keys_[i] != 0) {
      if (keys_[i] == id.value) return false;
      i = (i + 1) & mask_;
    }
    keys_[i] = id.value;
    slots_[i] = slot;
    ++size_;
    return true;
  }

  /// Starts loading the bucket `id` hashes to (what inserting or erasing
  /// it reads first): ids hash to scattered buckets, each a cache miss.
  void prefetch(task_id id) const {
    const std::size_t i = home(id);
    __builtin_prefetch(&keys_[i], 1);
    __builtin_prefetch(&slots_[i], 1);
  }

  std::uint32_t find(task_id id) const {
    for (std::size_t i = home(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id.value) return slots_[i];
      if (keys_[i] == 0) return npos;
    }
  }

  void erase(task_id id) {
    std::size_t i = home(id);
    while (keys_[i] != id.value) {
      assert(keys_[i] != 0 && "erasing an id that is not indexed");
      i = (i + 1) & mask_;
    }
    // Shift later members of the probe run back so no lookup stops early.
    for (std::size_t j = (i + 1) & mask_; keys_[j] != 0; j = (j + 1) & mask_) {
      const std::size_t want = home(task_id{keys_[j]});
      const bool movable = ((j - want) & mask_) >= ((j - i) & mask_);
      if (!movable) continue;
      keys_[i] = keys_[j];
      slots_[i] = slots_[j];
      i = j;
    }
    keys_[i] = 0;
    --size_;
  }

 private:
  std::size_t home(task_id id) const { return std::hash<task_id>{}(id) & mask_; }

  void rehash(std::size_t buckets) {
    assert(std::has_single_bit(buckets));
    std::vector<std::uint64_t> old_keys(buckets, 0);
    std::vector<std::uint32_t> old_slots(buckets, 0);
    old_keys.swap(keys_);
    old_slots.swap(slots_);
    mask_ = buckets - 1;
    size_ = 0;
    for (std::size_t i = 0; i < old_keys.size(); ++i)
      if (old_keys[i] != 0) insert(task_id{old_keys[i]}, old_slots[i]);
  }

  std::vector<std::uint64_t> keys_;  // 0 = empty (task ids start at 1)
  std::vector<std::uint32_t> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace drover::core
