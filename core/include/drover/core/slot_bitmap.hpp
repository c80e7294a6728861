#pragma once
// Which slots of a timing wheel hold entries, and the next one that does:
// the scan costs one word per 64 slots, however many entries there are.
#include <bit>
#include <cassert>
#include <cstdint>
#include <optional>
#include <vector>

namespace drover::core {

class slot_bitmap {
 public:
  explicit slot_bitmap(std::size_t slots) : slots_(slots), words_((slots + 63) / 64, 0) {
    assert(slots % 64 == 0);
  }

  void set(std::size_t slot) { words_[slot / 64] |= bit(slot); }
  void clear(std::size_t slot) { words_[slot / 64] &= ~bit(slot); }

  /// Steps from `start` (cyclically, 0 = start itself) to the first set slot.
  std::optional<std::size_t> distance_to_next(std::size_t start) const {
    for (std::size_t step = 0; step < slots_;) {
      const std::size_t slot = (start + step) % slots_;
      const std::uint64_t word = words_[slot / 64] >> (slot % 64);
      if (word != 0) {
        const std::size_t skip = static_cast<std::size_t>(std::countr_zero(word));
        if (step + skip < slots_) return step + skip;
        return std::nullopt;
      }
      step += 64 - slot % 64;
    }
    return std::nullopt;
  }

 private:
  static std::uint64_t bit(std::size_t slot) { return std::uint64_t{1} << (slot % 64); }

  std::size_t slots_;
  std::vector<std::uint64_t> words_;
};

}  // namespace drover::core
