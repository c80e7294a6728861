#pragma once
// A lease a runtime still works on: what a resuming runtime lists in its
// hello (the runtime client), and what the node's session book checks it
// against. CAF-free.
#include <cstdint>

namespace drover::actors {

struct held_lease {
  std::uint64_t task = 0, lease = 0;
};

}  // namespace drover::actors
