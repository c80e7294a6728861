#pragma once
// The broker actor: owns a broker_core and turns messages into calls on it.
// After every message it ships the core's effects: one dispatch_msg per
// consumer that received tasks, lease cancellations, and a timer for the
// core's next deadline (CAF's clock: virtual under the test coordinator).
#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include <boost/unordered/unordered_flat_map.hpp>
#include <caf/actor_addr.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "drover/actors/admission_gate.hpp"
#include "drover/actors/messages.hpp"
#include "drover/actors/spin_governor.hpp"
#include "drover/actors/submission_inbox.hpp"
#include "drover/core/broker_core.hpp"

namespace drover::actors {

struct broker_state {
  std::unique_ptr<core::broker_core> core;
  std::shared_ptr<submission_inbox> inbox;   // may be null (no embedded API)
  std::shared_ptr<admission_gate> admission;  // may be null
  std::size_t drained_tasks = 0;              // taken from the inbox this turn
  std::size_t drained_bytes = 0;
  struct joined_consumer {
    caf::actor handle;
    std::shared_ptr<remote_sink> sink;  // tasks go straight here when set (join_msg)
  };
  // Open addressing: one probe per dispatch batch, where a node-based map
  // missed the cache twice or more with 10,000 consumers.
  boost::unordered_flat_map<core::consumer_id, joined_consumer, std::hash<core::consumer_id>> consumers;
  std::unordered_map<caf::actor_addr, core::consumer_id> consumer_by_addr;
  std::optional<core::time_point> timer_armed_for;
  std::uint64_t stale_reports = 0;
  std::optional<spin_governor> spin;  // set by spin_policy_msg; none = the scheduler's configured spin

  static inline const char* name = "drover.broker";
};

using broker_actor_type = caf::stateful_actor<broker_state>;

caf::behavior broker_actor(broker_actor_type* self, core::broker_config config,
                           std::shared_ptr<submission_inbox> inbox,
                           std::shared_ptr<admission_gate> admission);

/// Sets how many polls the work-stealing worker `where` spins when idle
/// before it sleeps; false (nothing changes) when `where` is not one (the
/// test coordinator's).
bool set_idle_spin(caf::execution_unit* where, std::size_t polls);

/// The actor's clock as scheduler time (virtual time under the test coordinator).
core::time_point actor_now(const caf::local_actor* self);

}  // namespace drover::actors
