#pragma once
// What the node keeps for one runtime that does not hold a WebSocket: a
// long-poll session (each claim asks for up to `max` tasks and takes what is
// ready) or an SSE stream (a declared capacity; tasks become numbered events
// kept until reported, so a stream resumed with Last-Event-ID gets again
// what it may have missed). Used by the gateway's poll sessions and by the
// simulator's polling runtimes. Pure bookkeeping, CAF-free: the caller
// signals the demand and sends the tasks and cancels the book names.
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "drover/actors/remote_sink.hpp"

namespace drover::actors {

class poll_session_book {
 public:
  /// `capacity` 0: a long-poll session, bounded by its claims; otherwise an
  /// SSE stream's capacity, which also starts as its demand (see `open`).
  explicit poll_session_book(std::uint32_t capacity = 0) : capacity_(capacity) {}

  bool stream() const { return capacity_ != 0; }
  std::uint32_t capacity() const { return capacity_; }

  /// A stream opens asking for its whole capacity: the demand to signal.
  std::uint32_t open() {
    outstanding_ += capacity_;
    return capacity_;
  }

  /// Long-poll: a claim for up to `max` tasks. Returns the demand to signal
  /// so that what is ready or already asked for covers `max` (a claim never
  /// asks twice for what an earlier claim asked for).
  std::uint32_t claim(std::uint64_t max) {
    const std::uint64_t have = ready_.size() + outstanding_;
    if (have >= max) return 0;
    outstanding_ += max - have;
    return static_cast<std::uint32_t>(max - have);
  }

  /// SSE: `n` more tasks; false (nothing changes) beyond the capacity, with
  /// the unanswered events, the ready tasks and the demand counted.
  bool demand(std::uint32_t n) {
    if (sent_.size() + ready_.size() + outstanding_ + n > capacity_) return false;
    outstanding_ += n;
    return true;
  }

  /// The broker filled demand.
  void delivered(std::vector<remote_task> tasks) {
    outstanding_ -= std::min<std::uint64_t>(outstanding_, tasks.size());
    for (auto& t : tasks) ready_.push_back(std::move(t));
  }

  /// Long-poll: up to `max` ready tasks leave the books for a claim's answer
  /// (the runtime holds them now; their leases bound them).
  std::vector<remote_task> take(std::size_t max) {
    std::vector<remote_task> out;
    while (!ready_.empty() && out.size() < max) {
      claimed_.emplace(ready_.front().item.lease.value, ready_.front().item.id);
      out.push_back(std::move(ready_.front()));
      ready_.pop_front();
    }
    return out;
  }

  struct event {
    std::uint64_t id = 0;
    const remote_task* task = nullptr;
  };

  /// SSE: the ready tasks become events, numbered from 1 up, kept until the
  /// runtime reports them or the broker revokes them.
  std::vector<event> stream_ready() {
    std::vector<event> out;
    while (!ready_.empty()) {
      const auto id = ++last_event_id_;
      auto& task = sent_.emplace(id, std::move(ready_.front())).first->second;
      ready_.pop_front();
      out.push_back({id, &task});
    }
    return out;
  }

  /// SSE resume: the events after `last_seen` the runtime has not answered.
  std::vector<event> unanswered_after(std::uint64_t last_seen) const {
    std::vector<event> out;
    for (auto it = sent_.upper_bound(last_seen); it != sent_.end(); ++it) out.push_back({it->first, &it->second});
    return out;
  }

  /// SSE: the demand a stream resumed after event `last_seen` is told the
  /// node counts (its welcome's `requested`): what is asked for, what is
  /// ready, and the unanswered events about to be sent again. Each of them
  /// reaches the runtime as a task event, so it counts them as asked for.
  std::uint64_t requested_after(std::uint64_t last_seen) const {
    return outstanding_ + ready_.size() +
           static_cast<std::uint64_t>(std::distance(sent_.upper_bound(last_seen), sent_.end()));
  }

  /// The runtime reported the lease.
  void reported(core::lease_id lease) {
    std::erase_if(sent_, [&](const auto& e) { return e.second.item.lease == lease; });
    claimed_.erase(lease.value);
  }

  /// The broker ended the lease: not to be claimed or sent again. A runtime
  /// that has the task (claimed, or sent as an event) is to be told: the
  /// notice waits in `take_cancels` for the next answer or stream write.
  void revoked(core::lease_id lease) {
    std::erase_if(ready_, [&](const remote_task& t) { return t.item.lease == lease; });
    std::optional<core::task_id> held;
    if (auto it = claimed_.find(lease.value); it != claimed_.end()) held = it->second;
    for (const auto& [id, t] : sent_)
      if (t.item.lease == lease) held = t.item.id;
    reported(lease);
    if (held) cancels_.push_back(core::cancel_notice{{}, *held, lease});
  }

  /// Whether the runtime has the task under that lease (claimed, or sent as
  /// an event, and not reported): what its progress and log lines need.
  bool holds(core::task_id task, core::lease_id lease) const {
    if (auto it = claimed_.find(lease.value); it != claimed_.end()) return it->second == task;
    for (const auto& [id, t] : sent_)
      if (t.item.lease == lease) return t.item.id == task;
    return false;
  }

  /// The cancels not yet passed on to the runtime; the book forgets them.
  std::vector<core::cancel_notice> take_cancels() { return std::exchange(cancels_, {}); }
  bool has_cancels() const { return !cancels_.empty(); }

  std::uint64_t outstanding() const { return outstanding_; }
  std::size_t ready() const { return ready_.size(); }
  std::size_t unanswered() const { return sent_.size(); }
  /// Leases the runtime has: claimed, or sent as events, and not reported.
  std::size_t held() const { return claimed_.size() + sent_.size(); }

 private:
  std::uint32_t capacity_;
  std::uint64_t outstanding_ = 0;  // demand signalled, not yet filled
  std::deque<remote_task> ready_;  // delivered by the broker, not yet claimed or sent
  std::uint64_t last_event_id_ = 0;
  std::map<std::uint64_t, remote_task> sent_;  // SSE events by id, not yet answered
  std::map<std::uint64_t, core::task_id> claimed_;  // long-poll: lease → task, claimed and not yet reported
  std::vector<core::cancel_notice> cancels_;         // revoked leases the runtime has not been told of
};

}  // namespace drover::actors
