#pragma once
// Messages between the broker, the worker pools and the node's API.
// All are local-only (they carry shared payload buffers and observer
// pointers, never serialised): see docs/architecture.md for the table.
#include <cstdint>
#include <string>
#include <functional>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

#include "drover/actors/handler.hpp"
#include "drover/actors/remote_sink.hpp"
#include "drover/actors/report_item.hpp"
#include "drover/core/broker_core.hpp"

namespace drover::actors {

using drain_atom = caf::atom_constant<caf::atom("drain")>;    // submissions wait in the inbox
using tick_atom = caf::atom_constant<caf::atom("tick")>;      // a broker timer is due
using wake_atom = caf::atom_constant<caf::atom("wake")>;      // pool work arrived from another thread
using stats_atom = caf::atom_constant<caf::atom("stats")>;    // ask for counters
using limit_atom = caf::atom_constant<caf::atom("limit")>;    // read or set the work limit

/// The broker's idle-spin policy for its scheduler thread (spin_governor.hpp).
struct spin_policy_msg {
  std::size_t quiet_polls = 0, busy_polls = 0;
  double quiet_rate = 0;
};

/// Submit one task (simulated submitters; the API batches through the inbox).
struct submit_msg {
  core::task_id id;
  core::task_spec spec;
  core::observer_ref observer;
};

/// A consumer joins the broker; the broker monitors `handle`. With a
/// `sink` (a remote session that keeps its own leases), the broker hands
/// the consumer's tasks straight to it instead of sending `handle` a
/// dispatch_msg: one actor hop fewer per batch.
struct join_msg {
  core::consumer_id consumer;
  caf::actor handle;
  std::shared_ptr<remote_sink> sink;
};

/// A joined consumer also serves `queue`; the reply is the queue's index.
struct subscribe_msg {
  core::consumer_id consumer;
  std::string queue;
};

struct leave_msg {
  core::consumer_id consumer;
};

struct declare_queue_msg {
  std::string queue;
};

/// Everything a consumer tells the broker after one turn: the attempts it
/// finished, demand it adds and unused demand it takes back.
struct consumer_update_msg {
  core::consumer_id consumer;
  std::vector<report_item> reports;
  std::uint32_t demand = 0;
  std::uint32_t revoke = 0;
};

/// Broker -> consumer: tasks under lease, never more than its credit.
struct dispatch_msg {
  std::vector<core::dispatch_item> items;
};

/// Broker -> consumer: stop working on these leases (cancelled or expired).
struct lease_cancel_msg {
  std::vector<core::cancel_notice> notices;
};

struct cancel_msg {
  core::task_id task;
};

struct status_msg {
  core::task_id task;
};
/// Anyone -> broker: a status answered through a callback, for threads that
/// must not block on a reply (they may be the ones running the broker).
struct status_query_msg {
  core::task_id task;
  std::function<void(core::result<core::task_status>)> done;
};
struct queue_stats_query_msg {
  std::function<void(std::vector<core::queue_stats>)> done;
};

/// Anyone -> broker: `observer` follows a live task (or, with `stop`,
/// stops following it).
struct watch_msg {
  core::task_id task;
  core::observer_ref observer;
  bool stop = false;
};

/// Pool: register a handler for a queue; replies once the broker subscribed.
struct register_msg {
  std::string queue;
  handler fn;
};

struct broker_stats {
  std::vector<core::queue_stats> queues;
  std::size_t live_tasks = 0;
  std::size_t live_bytes = 0;
  std::size_t dead_letters = 0;
  std::uint64_t stale_reports = 0;
};

struct pool_stats {
  std::uint32_t work_limit = 0;
  std::uint32_t running = 0;  // handlers holding a permit
  std::uint32_t parked = 0;   // handlers awaiting without one (task_context::without_permit)
  std::uint32_t waiting = 0;
  std::uint32_t requested = 0;
  std::uint32_t peak_running = 0;
  std::uint64_t completed = 0;
};

}  // namespace drover::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::spin_policy_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::submit_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::join_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::subscribe_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::leave_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::declare_queue_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::consumer_update_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::dispatch_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::lease_cancel_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::cancel_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::status_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::status_query_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::queue_stats_query_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::watch_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::register_msg)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::broker_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::actors::pool_stats)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::core::task_status)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(drover::core::error)
