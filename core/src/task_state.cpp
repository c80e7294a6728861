#include "drover/core/task_state.hpp"

namespace drover::core {

const char* to_string(task_state s) {
  switch (s) {
    case task_state::queued: return "queued";
    case task_state::leased: return "leased";
    case task_state::succeeded: return "succeeded";
    case task_state::failed: return "failed";
    case task_state::dead: return "dead";
    case task_state::cancelled: return "cancelled";
    case task_state::expired: return "expired";
  }
  return "unknown";
}

}  // namespace drover::core
