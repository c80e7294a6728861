#pragma once
// An HTTP request following a task through node::watch: what the broker
// tells (the state at once and each change, the outcome, or that it does not
// know the task) is posted to the gateway's I/O thread, where the request's
// coroutine waits on a timer that the news cancels. Works for any task the
// broker knows, however it was submitted (HTTP, a /v1/client channel, the
// embedded API).
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "drover/core/outcome.hpp"
#include "io_poster.hpp"

namespace drover::net {

/// What the follower has heard; I/O thread only.
struct task_news {
  std::optional<core::task_state> state;
  std::uint16_t attempt = 0;
  std::optional<core::task_outcome> outcome;
  std::optional<core::error> rejected;
  std::uint64_t version = 0;  // bumped by each piece of news
  boost::asio::steady_timer* waiter = nullptr;
  bool ended() const { return outcome || rejected; }
};

class task_follower final : public core::task_observer {
 public:
  explicit task_follower(std::shared_ptr<io_poster> poster) : poster_(std::move(poster)) {}
  const std::shared_ptr<task_news>& news() const { return news_; }

  void on_accepted(core::task_id, bool, core::observer_tag) override {}
  void on_state(core::task_state s, std::uint16_t attempt, core::observer_tag) override {
    tell([s, attempt](task_news& n) { n.state = s, n.attempt = attempt; });
  }
  void on_outcome(const core::task_outcome& o, core::observer_tag) override {
    tell([o](task_news& n) { n.state = o.state, n.outcome = o; });
  }
  void on_rejected(const core::error& why, core::observer_tag) override {
    tell([why](task_news& n) { n.rejected = why; });
  }

 private:
  template <class F>
  void tell(F f) {
    poster_->post([n = news_, f = std::move(f)] {
      f(*n);
      ++n->version;
      if (n->waiter) n->waiter->cancel();
    });
  }

  std::shared_ptr<io_poster> poster_;
  std::shared_ptr<task_news> news_ = std::make_shared<task_news>();
};

/// Waits (no polling) until there is news after `seen`, or `limit` passes.
inline boost::asio::awaitable<void> wait_for_news(task_news& n, std::uint64_t seen, std::chrono::milliseconds limit) {
  if (n.version != seen) co_return;
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, limit);
  struct forget {
    task_news& n;
    ~forget() { n.waiter = nullptr; }  // also when the gateway stops mid-wait
  } guard{n};
  n.waiter = &timer;
  co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

}  // namespace drover::net
