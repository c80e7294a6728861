#pragma once
// A remote runtime as a broker consumer. The gateway's session for one
// connection (WebSocket, SSE or long-poll) owns a remote_sink and talks to
// this actor; the broker sees an ordinary consumer it monitors, so a
// session that ends (the actor exits) has its leases released at once.
//
// The actor keeps the leases its runtime holds, so a result for a lease the
// runtime does not hold is refused here with a precise reason before it
// reaches the broker, and queue indices become names for the wire; unless
// the session keeps them itself (`session_keeps_leases`, the WebSocket
// session), which then reports to the broker without this actor.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "drover/actors/messages.hpp"
#include "drover/actors/remote_sink.hpp"

namespace drover::actors {

struct remote_consumer_config {
  core::consumer_id id;
  caf::actor broker;
  std::vector<std::string> queues;
  std::shared_ptr<remote_sink> sink;
  /// The session keeps the runtime's leases itself (runtime_session_book),
  /// refuses reports for leases it does not hold, and sends reports and
  /// demand to the broker directly (remote_link::update), and the broker
  /// hands it its tasks directly (join_msg::sink): this actor then joins
  /// and forwards every cancel (the session drops those for leases already
  /// gone). Two actor hops and one lease map fewer per task
  /// (docs/benchmarks.md).
  bool session_keeps_leases = false;
};

/// From the session: the runtime can take `n` more tasks.
struct remote_demand_msg {
  std::uint32_t n = 0;
};

/// From the session: attempts the runtime finished.
struct remote_reports_msg {
  std::vector<remote_report> reports;
};

struct remote_consumer_state {
  remote_consumer_config config;
  std::vector<std::string> queue_names;  // by broker queue index
  std::size_t subscribed = 0;
  /// Open addressing (Boost.Unordered's flat map): a lease is added and
  /// removed once per task, and a node-based map allocated on each.
  boost::unordered_flat_map<core::lease_id, core::task_id, std::hash<core::lease_id>> held;
  std::uint64_t refused = 0;

  static inline const char* name = "drover.remote_consumer";
};

using remote_consumer_actor_type = caf::stateful_actor<remote_consumer_state>;

caf::behavior remote_consumer_actor(remote_consumer_actor_type* self, remote_consumer_config config);

}  // namespace drover::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::remote_demand_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::remote_reports_msg)
