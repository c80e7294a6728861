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

  void cancel(core::task_id id) {
    std::lock_guard lock(mutex_);
    if (broker_) caf::anon_send(broker_, actors::cancel_msg{id});
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
