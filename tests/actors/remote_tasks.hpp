#pragma once
// Remote tasks for the session-book tests: just an id, a lease and a queue.
#include "drover/actors/remote_sink.hpp"

namespace drover::actors::test_support {

inline remote_task task(std::uint64_t id, std::uint64_t lease) {
  remote_task t;
  t.item.id = core::task_id{id};
  t.item.lease = core::lease_id{lease};
  t.queue = "q";
  return t;
}

}  // namespace drover::actors::test_support
