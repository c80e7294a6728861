// `drover demo`: an embedded node with a few handlers, showing what happens
// to each task: retries, a delay, fan-out, a cancel, an idempotent duplicate.
#include "demo.hpp"

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "drover/drover.hpp"

namespace drover::apps {

namespace {

using clock_type = std::chrono::steady_clock;

struct printer {
  clock_type::time_point start = clock_type::now();
  std::mutex mutex;

  void line(const std::string& label, const completion& c) {
    std::lock_guard lock(mutex);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start).count();
    if (!c) {
      std::printf("[%5lld ms] %-22s refused: %s (%s)\n", static_cast<long long>(ms), label.c_str(),
                  core::to_string(c.err().code), c.err().message.c_str());
    } else {
      std::printf("[%5lld ms] %-22s task %-3llu %-9s attempts=%u %s%s\n", static_cast<long long>(ms), label.c_str(),
                  static_cast<unsigned long long>(c->id.value), core::to_string(c->state), c->attempts,
                  c->state == task_state::succeeded ? "value=" : "error=",
                  c->state == task_state::succeeded ? c->value.to_string().c_str() : c->err.message.c_str());
    }
    std::fflush(stdout);
  }
};

asio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(d);
  co_await timer.async_wait(asio::use_awaitable);
}

void register_handlers(node& n) {
  // Simulated I/O-bound work: suspends on a timer, holds no thread meanwhile.
  (void)n.handle("thumbnail", [](task_context& ctx) -> asio::awaitable<task_result> {
    co_await sleep_for(std::chrono::milliseconds(20));
    co_return task_result::success(bytes::copy_from("thumb(" + ctx.payload().to_string() + ")"));
  });
  // Fails its first two attempts; the broker retries with backoff.
  (void)n.handle("flaky", [](task_context& ctx) -> asio::awaitable<task_result> {
    if (ctx.attempt() < 3) co_return task_result::failure("upstream unavailable (attempt " + std::to_string(ctx.attempt()) + ")");
    co_return task_result::success(bytes::copy_from("recovered"));
  });
  // Fan-out / fan-in: submits child tasks and awaits them all, without its
  // permit meanwhile, so that waiting parents never leave the children none.
  node* self = &n;
  (void)n.handle("album", [self](task_context& ctx) -> asio::awaitable<task_result> {
    std::vector<task_handle> children;
    for (int i = 1; i <= 4; ++i) {
      auto child = co_await self->async_submit("thumbnail", bytes::copy_from(ctx.payload().to_string() + "-" + std::to_string(i)));
      if (!child) co_return task_result::failure(child.err().message);
      children.push_back(*child);
    }
    std::string joined;
    for (auto& child : children) {
      auto done = co_await ctx.without_permit(child.async_wait());
      if (!done || done->state != task_state::succeeded) co_return task_result::failure("a child task failed");
      joined += (joined.empty() ? "" : ",") + done->value.to_string();
    }
    co_return task_result::success(bytes::copy_from(joined));
  });
  (void)n.declare_queue("parked");  // no handler: its tasks wait
}

}  // namespace

int run_demo() {
  node_config config;
  config.work_limit = 4;
  config.default_backoff = core::backoff_policy{std::chrono::milliseconds(50), std::chrono::seconds(1), 2.0, 0.2};
  auto n = node::start(config);
  register_handlers(*n);
  std::printf("drover demo: embedded node, work limit %u, queues thumbnail flaky album parked\n", n->work_limit());

  printer out;
  std::vector<std::pair<std::string, task_handle>> watched;
  auto watch = [&](std::string label, core::result<task_handle> h) {
    if (!h) return out.line(label, completion(h.err()));
    watched.emplace_back(label, *h);
  };
  for (int i = 1; i <= 6; ++i) watch("thumbnail #" + std::to_string(i), n->submit("thumbnail", bytes::copy_from("photo" + std::to_string(i))));
  watch("flaky (retries)", n->submit("flaky", {}, {.max_attempts = 5}));
  watch("album (fan-out 4)", n->submit("album", bytes::copy_from("holiday")));
  core::task_options later;
  later.not_before = core::time_point{std::chrono::duration_cast<core::duration>(
      (clock_type::now() + std::chrono::milliseconds(150)).time_since_epoch())};
  watch("thumbnail (delay 150ms)", n->submit("thumbnail", bytes::copy_from("late"), later));
  watch("order-42 first", n->submit("flaky", {}, {.max_attempts = 5, .idempotency_key = "order-42"}));
  watch("order-42 duplicate", n->submit("flaky", {}, {.max_attempts = 5, .idempotency_key = "order-42"}));
  auto parked = n->submit("parked", bytes::copy_from("never runs"));
  watch("parked (cancelled)", parked);
  watch("unknown queue", n->submit("nonexistent", {}));
  if (parked) parked->cancel();

  for (auto& [label, h] : watched) h.on_complete([&out, label = label](const completion& c) { out.line(label, c); });
  for (auto& [label, h] : watched) (void)h.wait_for(std::chrono::seconds(10));

  const auto stats = n->stats();
  std::printf("done: %llu handler runs, peak %u running (work limit %u), %zu live tasks, %zu dead letters\n",
              static_cast<unsigned long long>(stats.completed), stats.peak_running, stats.work_limit, stats.live_tasks,
              stats.dead_letters);
  n->stop();
  return 0;
}

}  // namespace drover::apps
