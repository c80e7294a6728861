#pragma once
// Where the embedded API leaves submissions for the broker. Submitting
// threads append under a short lock; only the first submission of a batch
// rings the doorbell (one message), and the broker takes the whole batch in
// one turn. Under load that is one message per batch, not per task.
#include <functional>
#include <mutex>
#include <vector>

#include "drover/core/broker_core.hpp"

namespace drover::actors {

struct submission {
  core::task_id id;
  core::task_spec spec;
  core::observer_ref observer;
};

class submission_inbox {
 public:
  explicit submission_inbox(std::function<void()> doorbell) : doorbell_(std::move(doorbell)) {}

  void push(submission s) { push(s.id, std::move(s.spec), std::move(s.observer)); }

  /// One submission, built in place in the pending batch: its spec (some
  /// 200 bytes with the options) is moved once here, not twice.
  void push(core::task_id id, core::task_spec&& spec, core::observer_ref&& observer) {
    bool ring;
    std::vector<core::retired_refs> to_free;
    {
      std::lock_guard lock(mutex_);
      pending_.emplace_back(id, std::move(spec), std::move(observer));
      ring = !rung_;
      rung_ = true;
      to_free.swap(retired_);
    }
    if (ring) doorbell_();
  }  // to_free dies here: on the submitting thread, outside the lock

  /// The broker hands back references its ended tasks let go of; the next
  /// push frees them on the submitter's thread.
  void retire(core::retired_refs&& refs) {
    std::lock_guard lock(mutex_);
    retired_.push_back(std::move(refs));
  }

  /// Many submissions under one lock and at most one doorbell.
  void push_many(std::vector<submission>&& batch) {
    bool ring;
    std::vector<core::retired_refs> to_free;
    {
      std::lock_guard lock(mutex_);
      if (pending_.empty()) {
        pending_.swap(batch);
      } else {
        pending_.reserve(pending_.size() + batch.size());
        for (auto& s : batch) pending_.push_back(std::move(s));
      }
      ring = !rung_;
      rung_ = true;
      to_free.swap(retired_);
    }
    if (ring) doorbell_();
  }

  /// Takes every pending submission; the next push rings again.
  std::vector<submission> take() {
    std::vector<submission> out;
    std::lock_guard lock(mutex_);
    out.swap(pending_);
    pending_.swap(spare_);  // keeps the capacity of an earlier batch: no regrowth per batch
    rung_ = false;
    return out;
  }

  /// Hands a drained batch's vector back for reuse; a burst's big vector is
  /// freed instead, so a past burst does not pin its memory.
  void recycle(std::vector<submission>&& drained) {
    if (drained.capacity() > spare_capacity_max) return;
    drained.clear();
    std::lock_guard lock(mutex_);
    if (drained.capacity() > spare_.capacity()) spare_.swap(drained);
  }

  static constexpr std::size_t spare_capacity_max = 4096;

 private:
  std::function<void()> doorbell_;
  std::mutex mutex_;
  std::vector<submission> pending_;
  std::vector<submission> spare_;
  std::vector<core::retired_refs> retired_;
  bool rung_ = false;
};

}  // namespace drover::actors
