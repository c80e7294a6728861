#pragma once
// What a handler sees and returns. A handler is a C++20 coroutine
// (asio::awaitable) run by a worker pool under the node's work limit.
#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "drover/actors/unique_function.hpp"
#include "drover/core/broker_core.hpp"

namespace drover::actors {

/// A handler's verdict: success(value), or failure(why, retryable).
using task_result = core::attempt_result;

/// What a handler's permit is given back to and taken again from while it
/// waits without it (task_context::without_permit): its worker pool.
class permit_book {
 public:
  /// The calling handler no longer counts against the work limit.
  virtual void give_back() = 0;
  /// Calls `resume`, in the pool's turn, once the handler counts against the
  /// limit again: at once while the limit has room, else as soon as it has,
  /// ahead of tasks not started yet.
  virtual void take_again(unique_function resume) = 0;

 protected:
  ~permit_book() = default;
};

class task_context {
 public:
  task_context(core::dispatch_item item, const std::string& queue) : item_(std::move(item)), queue_(&queue) {}

  /// Reuses this context for another task (the pool recycles them).
  void reset(core::dispatch_item item, const std::string& queue) {
    item_ = std::move(item);
    queue_ = &queue;
    cancelled_ = false;
    parked_ = false;
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

  /// Awaits `op` with this handler's permit given back to its pool, which
  /// may start another task meanwhile; once `op` ends (or throws) the
  /// handler waits for a permit again, ahead of tasks not started yet. For
  /// waits that need no work of the handler's own, above all its child
  /// tasks' outcomes: parents that hold their permits while their children
  /// wait for one stall the pool. Outside a pool it just awaits `op`.
  template <class T>
  asio::awaitable<T> without_permit(asio::awaitable<T> op) {
    if (!permits_) co_return co_await std::move(op);
    permits_->give_back();
    parked_ = true;
    std::exception_ptr failed;
    std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
    try {
      if constexpr (std::is_void_v<T>) {
        co_await std::move(op);
        value.emplace();
      } else {
        value.emplace(co_await std::move(op));
      }
    } catch (...) {
      failed = std::current_exception();
    }
    // Even a cancelled handler takes its permit back before it goes on (to
    // end, as a rule). Once cancelled, asio's awaitable throws at every
    // co_await of an awaitable, before it starts: that check is off until
    // the permit is back.
    const bool throws = co_await asio::this_coro::throw_if_cancelled();
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await take_permit();
    parked_ = false;
    co_await asio::this_coro::throw_if_cancelled(throws);
    if (failed) std::rethrow_exception(failed);
    if constexpr (!std::is_void_v<T>) co_return std::move(*value);
  }

  /// Set by the pool that runs this context's handlers.
  void bind_permits(permit_book* book) { permits_ = book; }
  /// Inside without_permit, from giving the permit back to having it again.
  bool parked() const { return parked_; }

 private:
  asio::awaitable<void> take_permit() {
    return asio::async_initiate<const asio::use_awaitable_t<>, void()>(
        [book = permits_](auto handler) {
          book->take_again([h = std::move(handler)]() mutable { std::move(h)(); });
        },
        asio::use_awaitable);
  }

  core::dispatch_item item_;
  const std::string* queue_;
  bool cancelled_ = false;
  bool parked_ = false;
  permit_book* permits_ = nullptr;
};

using handler = std::function<asio::awaitable<task_result>(task_context&)>;

}  // namespace drover::actors
