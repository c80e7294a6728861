#pragma once
// The broker's live tasks: records in fixed-size chunks (stable addresses,
// no allocation per task, slots reused through a free list) and an id index.
// A dispatched task carries its slot, so a consumer's report finds its record
// without hashing; the id stored in the record tells a reused slot apart.
#include <cassert>
#include <cstdint>
#include <memory>
#include <new>
#include <vector>

#include "drover/core/id_index.hpp"
#include "drover/core/task_record.hpp"

namespace drover::core {

class task_table {
 public:
  static constexpr std::uint32_t chunk_size = 4096;

  std::size_t size() const { return index_.size(); }

  /// A fresh record for `id`, or null if the id is live already.
  task_record* insert(task_id id) {
    const std::uint32_t slot = take_slot();
    if (!index_.insert(id, slot)) {
      free_slots_.push_back(slot);
      return nullptr;
    }
    task_record& record = at(slot);
    assert(!record.id.valid());
    record.id = id;
    record.slot = slot;
    return &record;
  }

  task_record* find(task_id id) {
    const auto slot = index_.find(id);
    return slot == id_index::npos ? nullptr : &at(slot);
  }
  const task_record* find(task_id id) const { return const_cast<task_table*>(this)->find(id); }

  /// The record in `slot` if it still holds `id`.
  task_record* find(task_id id, std::uint32_t slot) {
    if (slot >= next_unused_) return nullptr;
    task_record& record = at(slot);
    return record.id == id ? &record : nullptr;
  }
  const task_record* find(task_id id, std::uint32_t slot) const { return const_cast<task_table*>(this)->find(id, slot); }

  /// Starts loading the first two cache lines of the record in `slot`
  /// (what finishing a task reads); nothing for a slot out of range.
  void prefetch(std::uint32_t slot) const {
    if (slot >= next_unused_) return;
    const char* record = reinterpret_cast<const char*>(&chunks_[slot / chunk_size][slot % chunk_size]);
    __builtin_prefetch(record, 1);
    __builtin_prefetch(record + 64, 1);
  }

  /// Starts loading the index bucket of `id` (inserted at submit, erased
  /// when the task ends).
  void prefetch_index(task_id id) const { index_.prefetch(id); }

  void erase(task_record& record) {
    assert(record.id.valid() && !record.prev && !record.next);
    assert(record.timer.slot == UINT32_MAX && "a freed task must not keep a timer");
    index_.erase(record.id);
    const std::uint32_t slot = record.slot;
    // Releases payload, extras and observer, then each member back to its
    // initializer: assigning a value-initialized record zeroed all 128
    // bytes with `rep stos` first, a seventh of finishing a task.
    record.~task_record();
    ::new (static_cast<void*>(&record)) task_record;
    free_slots_.push_back(slot);
  }

  template <class F>
  void for_each(F&& f) const {
    for (std::uint32_t slot = 0; slot < next_unused_; ++slot) {
      const task_record& record = chunks_[slot / chunk_size][slot % chunk_size];
      if (record.id.valid()) f(record);
    }
  }

 private:
  task_record& at(std::uint32_t slot) { return chunks_[slot / chunk_size][slot % chunk_size]; }

  std::uint32_t take_slot() {
    if (!free_slots_.empty()) {
      const auto slot = free_slots_.back();
      free_slots_.pop_back();
      return slot;
    }
    if (next_unused_ % chunk_size == 0) chunks_.push_back(std::make_unique<task_record[]>(chunk_size));
    return next_unused_++;
  }

  std::vector<std::unique_ptr<task_record[]>> chunks_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t next_unused_ = 0;
  id_index index_;
};

}  // namespace drover::core
