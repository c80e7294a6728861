#pragma once
// The boundary between a connection (gateway session) and the actor that
// makes its runtime a broker consumer. CAF-free, so the gateway and the
// embedded API can name it without CAF headers.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "drover/actors/report_item.hpp"
#include "drover/core/broker_core.hpp"

namespace drover::actors {

/// A task on its way to a runtime, with its queue's name resolved.
struct remote_task {
  core::dispatch_item item;
  std::string queue;
};

/// An attempt the runtime finished: the broker's own report item, so a
/// session's batch becomes the broker's message as it is.
using remote_report = report_item;

/// Why a report for a lease the runtime does not hold is refused.
inline core::error not_held(core::task_id task, core::lease_id lease) {
  return core::make_error(core::errc::stale_lease, "lease " + std::to_string(lease.value) + " of task " +
                                                       std::to_string(task.value) + " is not held by this runtime");
}

/// Implemented by the connection's session; called on a CAF thread, so an
/// implementation hands work to its own I/O thread and returns.
class remote_sink {
 public:
  virtual ~remote_sink() = default;
  /// Joined and subscribed: the runtime may now signal demand.
  virtual void joined(core::consumer_id id) = 0;
  virtual void deliver(std::vector<remote_task> tasks) = 0;
  /// The broker took these leases back (cancelled or expired).
  virtual void revoke(std::vector<core::cancel_notice> notices) = 0;
  /// A report the runtime sent was refused; the runtime should be told why.
  virtual void refused(core::task_id task, core::lease_id lease, core::error why) = 0;
  /// Joining failed (e.g. a queue name was refused): the session should end.
  virtual void failed(core::error why) = 0;
};

/// The connection's handle on its consumer: demand and results go in here.
/// Destroying it (or close()) ends the consumer; the broker then releases
/// every lease the runtime held.
class remote_link {
 public:
  virtual ~remote_link() = default;
  virtual void demand(std::uint32_t n) = 0;
  virtual void report(std::vector<remote_report> reports) = 0;
  /// Reports, then `demand` more (0: none), as one message where the link
  /// can (a session that keeps its leases: straight to the broker).
  virtual void update(std::vector<remote_report> reports, std::uint32_t demand) {
    if (!reports.empty()) report(std::move(reports));
    if (demand > 0) this->demand(demand);
  }
  virtual void close() = 0;
};

}  // namespace drover::actors
