#pragma once
// An awaitable a handler can park on until the test opens it. Completion goes
// through the handler's own executor, as a real asio operation's would.
#include <deque>
#include <functional>

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "drover/actors/unique_function.hpp"

namespace drover::test_support {

class gate {
 public:
  auto wait() {
    return asio::async_initiate<const asio::use_awaitable_t<>, void()>(
        [this](auto handler) {
          waiters_.emplace_back([h = std::move(handler)]() mutable {
            auto ex = asio::get_associated_executor(h);
            asio::post(ex, std::move(h));
          });
        },
        asio::use_awaitable);
  }

  std::size_t waiting() const { return waiters_.size(); }

  bool open_one() {
    if (waiters_.empty()) return false;
    auto w = std::move(waiters_.front());
    waiters_.pop_front();
    w();
    return true;
  }

  void open_all() {
    while (open_one()) {
    }
  }

 private:
  std::deque<actors::unique_function> waiters_;
};

}  // namespace drover::test_support
