#pragma once
// A task_observer that records what it is told, for assertions.
#include <mutex>
#include <optional>
#include <vector>

#include "drover/core/outcome.hpp"

namespace drover::test_support {

struct recorder : core::task_observer {
  core::task_id accepted;
  bool duplicate = false;
  std::vector<core::task_state> states;
  std::optional<core::task_outcome> outcome;
  std::optional<core::error> rejected;

  void on_accepted(core::task_id id, bool dup, core::observer_tag) override { accepted = id, duplicate = dup; }
  void on_state(core::task_state s, std::uint16_t, core::observer_tag) override { states.push_back(s); }
  void on_outcome(const core::task_outcome& o, core::observer_tag) override { outcome = o; }
  void on_rejected(const core::error& why, core::observer_tag) override { rejected = why; }
};

}  // namespace drover::test_support
