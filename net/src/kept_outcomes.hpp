#pragma once
// Outcomes of the tasks submitted on `/v1/client` connections that asked
// for acknowledgements (`?accepted=true`): kept so that the client, having
// lost its connection, can still `follow` (or GET) a task that ended while
// it was away. Bounded like the retained HTTP outcomes: the oldest go first.
#include "drover/core/outcome.hpp"
#include "recent_by_id.hpp"

namespace drover::net {

class kept_outcomes {
 public:
  explicit kept_outcomes(std::size_t capacity) : recent_(capacity) {}
  void add(const core::task_outcome& o) { recent_.add(o.id.value, o); }
  std::optional<core::task_outcome> find(std::uint64_t id) const { return recent_.find(id); }

 private:
  recent_by_id<core::task_outcome> recent_;
};

}  // namespace drover::net
