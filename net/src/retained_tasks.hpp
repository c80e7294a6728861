#pragma once
// Handles of the tasks submitted over HTTP, so their outcomes stay readable
// after the broker forgot them. Bounded: the oldest are dropped first.
#include "drover/task_handle.hpp"
#include "recent_by_id.hpp"

namespace drover::net {

class retained_tasks {
 public:
  explicit retained_tasks(std::size_t capacity) : recent_(capacity) {}
  void add(const task_handle& h) { recent_.add(h.id().value, h); }
  std::optional<task_handle> find(std::uint64_t id) const { return recent_.find(id); }

 private:
  recent_by_id<task_handle> recent_;
};

}  // namespace drover::net
