#include "drover/task_handle.hpp"

#include <atomic>
#include <memory>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include "task_cell.hpp"

namespace drover {

task_id task_handle::id() const { return cell_->id(); }
task_state task_handle::state() const { return cell_->state(); }
bool task_handle::done() const { return cell_->done(); }
completion task_handle::wait() const { return cell_->wait(); }
std::optional<completion> task_handle::wait_for(std::chrono::nanoseconds timeout) const {
  return cell_->wait_for(timeout);
}
void task_handle::on_complete(std::function<void(const completion&)> fn) const { cell_->subscribe(std::move(fn)); }

void task_handle::cancel() const { cell_->cancel(); }

asio::awaitable<completion> task_handle::async_wait() const {
  // No coroutine frame of our own: the initiation is the awaitable.
  return asio::async_initiate<const asio::use_awaitable_t<>, void(completion)>(
      [cell = cell_](auto handler) {
        using handler_type = decltype(handler);
        // The outcome (told on the broker's thread) and a cancellation of
        // the awaiting coroutine (emitted on its executor's) race to end
        // the wait: the first wins, and only the winner touches the handler.
        struct waiter {
          explicit waiter(handler_type&& h) : handler(std::move(h)) {}
          handler_type handler;
          std::atomic<bool> ended{false};
          void end(completion c) {
            if (ended.exchange(true)) return;
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler), c = std::move(c)]() mutable {
              asio::get_associated_cancellation_slot(h).clear();  // on the thread that emits, as asio asks
              std::move(h)(std::move(c));
            });
          }
        };
        auto slot = asio::get_associated_cancellation_slot(handler);
        auto w = std::make_shared<waiter>(std::move(handler));
        if (slot.is_connected())
          slot.assign([weak = std::weak_ptr<waiter>(w)](asio::cancellation_type) {
            if (auto s = weak.lock()) s->end(core::make_error(core::errc::cancelled, "the wait was cancelled"));
          });
        cell->subscribe([w](const completion& c) { w->end(c); });
      },
      asio::use_awaitable);
}

}  // namespace drover
