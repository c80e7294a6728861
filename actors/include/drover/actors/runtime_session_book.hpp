#pragma once
// What the node keeps for one remote runtime's session, whatever carries it
// (the gateway's WebSocket session; the simulator's link in drover-sim): the
// demand it signalled and the broker has not filled, and the leases it
// holds. A resumed runtime is told what it lost with its connection. Pure
// bookkeeping, CAF-free: the caller sends what the book says.
#include <cstdint>
#include <algorithm>
#include <map>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "drover/actors/held_lease.hpp"
#include "drover/actors/remote_sink.hpp"

namespace drover::actors {

class runtime_session_book {
 public:
  explicit runtime_session_book(std::uint32_t capacity = 0) : capacity_(capacity) {}

  /// The runtime asks for `n` more tasks: false (nothing changes) when that
  /// would take demand and held leases beyond its capacity.
  bool demand(std::uint32_t n) {
    if (granted_ + leases_.size() + n > capacity_) return false;
    granted_ += n;
    return true;
  }

  /// The broker handed the runtime a task: one unit of demand filled.
  void delivered(remote_task t) {
    if (granted_ > 0) --granted_;
    const auto lease = t.item.lease.value;
    leases_.insert_or_assign(lease, std::move(t));
  }

  /// The lease ended: reported by the runtime, or revoked by the broker.
  /// False when the runtime did not hold it (already reported or revoked).
  bool ended(std::uint64_t lease) { return leases_.erase(lease) > 0; }

  /// The runtime reports on `lease`: true, and the lease is gone, if it
  /// held it for `task`; false (a stale report, to be refused) if not.
  bool reported(std::uint64_t task, std::uint64_t lease) {
    auto it = leases_.find(lease);
    if (it == leases_.end() || it->second.item.id.value != task) return false;
    leases_.erase(it);
    return true;
  }

  /// The task held under `lease`, if the runtime holds that lease for `task`.
  const remote_task* held(std::uint64_t task, std::uint64_t lease) const {
    auto it = leases_.find(lease);
    return it != leases_.end() && it->second.item.id.value == task ? &it->second : nullptr;
  }

  struct resumption {
    /// For the welcome: demand still counted, including the tasks about to
    /// be sent again (each task frame fills one unit of demand the runtime
    /// counts as asked for).
    std::uint64_t granted = 0;
    std::vector<held_lease> cancel;           // listed by the runtime, no longer its own
    std::vector<const remote_task*> resend;   // its own, unknown to the runtime (lease order)
  };

  /// A runtime resumes the session listing the leases it still works on;
  /// its capacity may have changed.
  resumption resume(const std::vector<held_lease>& holding, std::uint32_t capacity) {
    capacity_ = capacity;
    resumption r;
    std::map<std::uint64_t, bool> known;
    for (const auto& h : holding) {
      known[h.lease] = true;
      if (!held(h.task, h.lease)) r.cancel.push_back(h);
    }
    for (const auto& [lease, task] : leases_)
      if (!known.count(lease)) r.resend.push_back(&task);
    // Resends go in lease order: deterministic, whatever the table's order.
    std::sort(r.resend.begin(), r.resend.end(),
              [](const remote_task* a, const remote_task* b) { return a->item.lease.value < b->item.lease.value; });
    r.granted = granted_ + r.resend.size();
    return r;
  }

  std::uint64_t granted() const { return granted_; }
  std::size_t in_flight() const { return leases_.size(); }
  std::uint32_t capacity() const { return capacity_; }

 private:
  std::uint32_t capacity_;
  std::uint64_t granted_ = 0;
  // Hashed, not ordered: a task's lease is added and ended once each (a
  // tree's node allocation and rebalancing were on every task's path); open
  // addressing (Boost.Unordered's flat map), not a node allocated per lease.
  // Pointers into it (held(), resume()) last until the next change.
  boost::unordered_flat_map<std::uint64_t, remote_task> leases_;
};

}  // namespace drover::actors
