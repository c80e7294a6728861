#pragma once
// An attempt a consumer finished, on its way to the broker: what a pool
// reports, and what a remote runtime's session reports (remote_report).
// CAF-free, so a gateway session builds the broker's message contents
// without a copy in between.
#include <cstdint>

#include "drover/core/broker_core.hpp"

namespace drover::actors {

struct report_item {
  core::task_id task;
  core::lease_id lease;
  core::attempt_result result;
  std::uint32_t slot = UINT32_MAX;  // from the dispatch item: a lookup without hashing
};

}  // namespace drover::actors
