#pragma once
// What a handler sees and returns. A handler is a C++20 coroutine
// (asio::awaitable) run by a worker pool under the node's work limit.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <asio/awaitable.hpp>

#include "drover/core/broker_core.hpp"

namespace drover::actors {

/// A handler's verdict: success(value), or failure(why, retryable).
using task_result = core::attempt_result;

class task_context {
 public:
  task_context(core::dispatch_item item, const std::string& queue) : item_(std::move(item)), queue_(&queue) {}

  /// Reuses this context for another task (the pool recycles them).
  void reset(core::dispatch_item item, const std::string& queue) {
    item_ = std::move(item);
    queue_ = &queue;
    cancelled_ = false;
  }

  core::task_id id() const { return item_.id; }
  const std::string& queue() const { return *queue_; }
  const core::bytes& payload() const { return item_.payload; }
  std::string_view payload_view() const { return item_.payload.view(); }
  std::uint16_t attempt() const { return item_.attempt; }
  core::time_point deadline() const { return item_.deadline; }
  /// Value of a meta key, or empty.
  std::string_view meta(std::string_view key) const {
    if (item_.meta)
      for (const auto& [k, v] : *item_.meta)
        if (k == key) return v;
    return {};
  }
  /// True once the task was cancelled or its lease ended; the handler's
  /// next co_await of an asio operation also throws operation_aborted.
  bool cancelled() const { return cancelled_; }

  const core::dispatch_item& item() const { return item_; }
  void mark_cancelled() { cancelled_ = true; }

 private:
  core::dispatch_item item_;
  const std::string* queue_;
  bool cancelled_ = false;
};

using handler = std::function<asio::awaitable<task_result>(task_context&)>;

}  // namespace drover::actors
