#pragma once
// Awaits an answer the broker gives through a callback (node::status_async,
// node::queue_stats_async) without blocking the I/O thread, which may be the
// thread running the broker (node_config::hostable_actors): a blocking
// request from there would wait for itself. The answer is posted back here
// and cancels the wait's timer.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "io_poster.hpp"

namespace drover::net {

/// `ask` hands the broker a callback; the answer, or nothing if none came
/// within `limit` (the node is stopping).
template <class T>
boost::asio::awaitable<std::optional<T>> broker_answer(std::shared_ptr<io_poster> poster,
                                                       std::function<void(std::function<void(T)>)> ask,
                                                       std::chrono::milliseconds limit) {
  struct box {
    std::optional<T> answer;
    boost::asio::steady_timer* waiter = nullptr;
  };
  auto b = std::make_shared<box>();
  ask([b, poster](T answer) {
    poster->post([b, answer = std::move(answer)]() mutable {
      b->answer = std::move(answer);
      if (b->waiter) b->waiter->cancel();
    });
  });
  if (!b->answer) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, limit);
    struct forget {
      box& b;
      ~forget() { b.waiter = nullptr; }  // also when the gateway stops mid-wait
    } guard{*b};
    b->waiter = &timer;
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  co_return std::move(b->answer);
}

}  // namespace drover::net
