#pragma once
// The safety and liveness properties a simulated run must keep, checked from
// what the run observes (submits accepted, demand handed to consumers,
// dispatches, outcomes, deaths) and from the broker's own view. The first
// violation is kept with a readable report; the run stops there.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "drover/core/broker_core.hpp"

namespace drover::sim {

struct violation {
  std::string invariant;  // a short name: lost_task, completed_twice, ...
  std::string detail;
};

/// A live consumer's side of the credit books at quiescence.
struct consumer_books {
  core::consumer_id id;
  std::uint32_t outstanding_demand = 0;  // asked for, not yet received
  std::uint32_t held = 0;                // tasks it is working on
};

class invariant_checker {
 public:
  invariant_checker() = default;

  void accepted(core::task_id task, core::time_point earliest_start, bool duplicate);
  void demand_sent(core::consumer_id consumer, std::uint32_t n);
  /// The node refused a runtime's demand as beyond its capacity: the two
  /// sides' books disagree (a runtime keeping the protocol is never refused).
  void demand_refused(core::consumer_id consumer, std::uint32_t n, std::uint64_t node_granted, std::size_t node_held,
                      std::size_t runtime_held);
  void dispatched(core::consumer_id consumer, core::task_id task, core::lease_id lease, core::time_point now);
  /// An in-process pool started a leased task (seen at its handler's start:
  /// its demand flows inside the node, so only the task's side is checked).
  void started_in_pool(core::task_id task, core::lease_id lease, core::time_point now);
  /// `value` is what a successful attempt returned: the simulated runtimes
  /// return "lease=N", naming the lease whose attempt produced it.
  void outcome(core::task_id task, core::task_state state, std::string_view value, bool for_duplicate);
  /// The consumer's runtime is gone; the broker must release its leases
  /// within `bound` (the lease TTL and more, for a parked session).
  void consumer_died(core::consumer_id consumer, core::time_point now, core::duration bound);
  /// A parked session was taken back in time: its leases rightly stay.
  void consumer_resumed(core::consumer_id consumer);
  /// A pool started a handler, or gave one back its permit after a wait
  /// without it, with `running` handlers holding permits (this one
  /// included) while `limit` was in force.
  void handler_started(core::consumer_id pool, std::uint32_t running, std::uint32_t limit, std::uint64_t task);

  /// A client channel delivered the outcome of its submission `seq` (an
  /// ordered channel must deliver 0, 1, 2, ... in turn; none twice).
  void channel_delivered(std::uint64_t channel, bool ordered, std::uint64_t seq);
  /// At the end: every one of the channel's `submitted` submissions had its
  /// outcome delivered.
  void check_channel(std::uint64_t channel, std::uint64_t submitted);

  /// A watcher (node::watch) was refused: the broker did not know the task,
  /// which it must while the task has not ended.
  void watch_refused(core::task_id task);
  /// At the end: a watcher the broker took (it heard the task's state)
  /// heard its outcome too.
  void check_watcher(core::task_id task, bool taken, bool told);

  /// After every step: the broker's internal invariants, and dead consumers'
  /// leases released within the bound.
  void check_broker(const core::broker_core& broker, core::time_point now);
  /// With no message in flight: the broker's credit and in-flight counts
  /// match what each live consumer believes.
  void check_books(const core::broker_core& broker, const std::vector<consumer_books>& consumers);
  /// At the end: every accepted task ended.
  void check_drained();

  const std::optional<violation>& first() const { return first_; }
  bool ok() const { return !first_; }
  std::size_t accepted_count() const { return tasks_.size(); }
  std::size_t ended_count() const { return ended_; }

 private:
  struct task_facts {
    core::time_point earliest_start;
    core::lease_id last_lease;
    bool ended = false;
    core::task_state state = core::task_state::queued;
  };
  void fail(std::string invariant, std::string detail);
  bool leased(core::task_id task, core::lease_id lease, core::time_point now);

  std::map<std::uint64_t, task_facts> tasks_;  // ordered: reports list the lowest id first
  std::unordered_map<std::uint64_t, std::int64_t> unfilled_demand_;  // by consumer: demand sent - tasks dispatched
  std::map<std::uint64_t, core::time_point> dead_;                    // consumer -> when its leases must be back
  struct channel_facts {
    std::set<std::uint64_t> delivered;
    std::optional<std::uint64_t> last;
  };
  std::map<std::uint64_t, channel_facts> channels_;
  std::size_t ended_ = 0;
  std::optional<violation> first_;
};

}  // namespace drover::sim
