#pragma once
// A handle's way back to its broker. The node cuts it when it stops, so a
// task_handle kept past its node never touches a dead actor system.
#include <mutex>

#include <caf/actor.hpp>
#include <caf/send.hpp>

#include "drover/actors/messages.hpp"

namespace drover::detail {

class broker_link {
 public:
  explicit broker_link(caf::actor broker) : broker_(std::move(broker)) {}

  void cancel(core::task_id id) { send(actors::cancel_msg{id}); }

  /// A watcher that cannot reach the broker any more is told so.
  void watch(core::task_id id, core::observer_ref observer, bool stop) {
    std::unique_lock lock(mutex_);
    if (broker_) {
      caf::anon_send(broker_, actors::watch_msg{id, std::move(observer), stop});
      return;
    }
    lock.unlock();
    if (!stop) observer.rejected(core::make_error(core::errc::shutting_down, "the node is stopping"));
  }

  /// Sends `m` unless the node is stopping (then it is dropped, with what it holds).
  template <class Message>
  void send(Message&& m) {
    std::lock_guard lock(mutex_);
    if (broker_) caf::anon_send(broker_, std::forward<Message>(m));
  }

  void cut() {
    std::lock_guard lock(mutex_);
    broker_ = nullptr;
  }

 private:
  std::mutex mutex_;
  caf::actor broker_;
};

}  // namespace drover::detail
