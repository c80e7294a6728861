#include "drover/task_handle.hpp"

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
        auto shared_handler = std::make_shared<decltype(handler)>(std::move(handler));
        cell->subscribe([shared_handler](const completion& c) {
          auto ex = asio::get_associated_executor(*shared_handler);
          asio::post(ex, [shared_handler, c]() mutable { (*shared_handler)(std::move(c)); });
        });
      },
      asio::use_awaitable);
}

}  // namespace drover
