// The embedded API on the real, threaded scheduler: what a service sees.
#include "drover/node.hpp"

#include <gtest/gtest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <future>
#include <thread>

using namespace drover;
using namespace std::chrono_literals;

namespace {

constexpr auto patience = 10s;  // an upper bound for a hang, not a timing assertion

std::unique_ptr<node> start_node(std::uint32_t work_limit = 8, std::size_t max_tasks = 100'000) {
  node_config c;
  c.work_limit = work_limit;
  c.max_queued_tasks = max_tasks;
  c.default_backoff = core::backoff_policy{1ms, 10ms, 2.0, 0.0};
  c.seed = 1;
  return node::start(c);
}

handler echo() {
  return [](task_context& ctx) -> asio::awaitable<task_result> { co_return task_result::success(ctx.payload()); };
}

completion wait(const task_handle& h) {
  auto c = h.wait_for(patience);
  EXPECT_TRUE(c) << "no outcome within " << patience.count() << " s";
  return c ? *c : completion(core::make_error(errc::timed_out, "test gave up"));
}

/// A handler's wait of 30 s; `seen` tells whether it was cancelled first.
asio::awaitable<void> wait_to_be_cancelled(std::promise<std::string>& seen) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(30s);
  try {
    co_await timer.async_wait(asio::use_awaitable);
    seen.set_value("timer ran out");
  } catch (const std::system_error& e) {
    seen.set_value(e.code() == asio::error::operation_aborted ? "aborted" : e.what());
  }
}

}  // namespace

TEST(node, submit_runs_the_handler_and_returns_its_result) {
  auto n = start_node();
  ASSERT_TRUE(n->handle("echo", echo()));
  auto h = n->submit("echo", bytes::copy_from("hello"));
  ASSERT_TRUE(h);
  auto c = wait(*h);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state, task_state::succeeded);
  EXPECT_EQ(c->value.view(), "hello");
  EXPECT_EQ(h->state(), task_state::succeeded);
}

TEST(node, unknown_queue_fails_at_once) {
  auto n = start_node();
  auto h = n->submit("nobody", {});
  ASSERT_FALSE(h);
  EXPECT_EQ(h.code(), errc::unknown_queue);
}

TEST(node, a_queue_one_node_knows_is_unknown_to_another_on_the_same_thread) {
  auto a = start_node();
  ASSERT_TRUE(a->declare_queue("shared-name"));
  EXPECT_TRUE(a->post("shared-name", {}));
  auto b = start_node();
  auto refused = b->submit("shared-name", {});
  ASSERT_FALSE(refused) << "b never declared it";
  EXPECT_EQ(refused.code(), errc::unknown_queue);
  EXPECT_TRUE(a->post("shared-name", {}));
  EXPECT_EQ(a->submit("other", {}).code(), errc::unknown_queue);
}

TEST(node, a_full_node_fails_fast_or_waits_by_choice) {
  auto n = start_node(1, 2);
  ASSERT_TRUE(n->declare_queue("parked"));  // no handler: tasks stay queued
  auto a = n->submit("parked", {});
  auto b = n->submit("parked", {});
  ASSERT_TRUE(a && b);
  auto full = n->submit("parked", {});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.code(), errc::queue_full);
  auto waiter = std::async(std::launch::async, [&] { return n->submit("parked", {}, {}, when_full::wait); });
  EXPECT_EQ(waiter.wait_for(50ms), std::future_status::timeout) << "must wait while the node is full";
  a->cancel();
  ASSERT_EQ(waiter.wait_for(patience), std::future_status::ready);
  EXPECT_TRUE(waiter.get());
}

TEST(node, work_limit_caps_running_handlers_and_changes_at_run_time) {
  auto n = start_node(3);
  std::atomic<int> running{0}, peak{0};
  std::atomic<bool> release{false};
  ASSERT_TRUE(n->handle("slow", [&](task_context&) -> asio::awaitable<task_result> {
    const int now = ++running;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (!release.load()) {
      timer.expires_after(1ms);
      co_await timer.async_wait(asio::use_awaitable);
    }
    --running;
    co_return task_result::success({});
  }));
  std::vector<task_handle> hs;
  for (int i = 0; i < 20; ++i) hs.push_back(*n->submit("slow", {}));
  for (int i = 0; i < 500 && running.load() < 3; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(running.load(), 3);
  n->set_work_limit(6);
  for (int i = 0; i < 500 && running.load() < 6; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(running.load(), 6) << "raised without restart";
  release = true;
  for (auto& h : hs) EXPECT_TRUE(wait(h));
  EXPECT_LE(peak.load(), 6);
  EXPECT_LE(n->stats().peak_running, 6u);
}

TEST(node, handler_fans_out_child_tasks_and_awaits_them) {
  auto n = start_node(8);
  ASSERT_TRUE(n->handle("square", [](task_context& ctx) -> asio::awaitable<task_result> {
    const int x = std::stoi(ctx.payload().to_string());
    co_return task_result::success(bytes::copy_from(std::to_string(x * x)));
  }));
  node* self = n.get();
  ASSERT_TRUE(n->handle("sum_of_squares", [self](task_context& ctx) -> asio::awaitable<task_result> {
    const int upto = std::stoi(ctx.payload().to_string());
    std::vector<task_handle> children;
    for (int i = 1; i <= upto; ++i) {
      auto child = co_await self->async_submit("square", bytes::copy_from(std::to_string(i)));
      if (!child) co_return task_result::failure(child.err().message);
      children.push_back(*child);
    }
    int sum = 0;
    for (auto& child : children) {
      auto done = co_await child.async_wait();
      if (!done || done->state != task_state::succeeded) co_return task_result::failure("child failed");
      sum += std::stoi(done->value.to_string());
    }
    co_return task_result::success(bytes::copy_from(std::to_string(sum)));
  }));
  auto h = n->submit("sum_of_squares", bytes::copy_from("10"));
  auto c = wait(*h);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->value.view(), "385");
}

TEST(node, parents_awaiting_children_without_their_permits_finish_a_tree_wider_than_the_work_limit) {
  // Each task of depth d > 0 submits two of depth d - 1 and awaits both: 15
  // tasks, up to 7 parents waiting at once under a limit of 2. Parents that
  // kept their permits while waiting would leave none for their children.
  auto n = start_node(2);
  node* self = n.get();
  ASSERT_TRUE(n->handle("tree", [self](task_context& ctx) -> asio::awaitable<task_result> {
    const int depth = std::stoi(ctx.payload().to_string());
    int size = 1;
    if (depth > 0) {
      std::vector<task_handle> children;
      for (int i = 0; i < 2; ++i) {
        auto child = co_await self->async_submit("tree", bytes::copy_from(std::to_string(depth - 1)));
        if (!child) co_return task_result::failure(child.err().message);
        children.push_back(*child);
      }
      for (auto& child : children) {
        auto done = co_await ctx.without_permit(child.async_wait());
        if (!done || done->state != task_state::succeeded) co_return task_result::failure("child failed");
        size += std::stoi(done->value.to_string());
      }
    }
    co_return task_result::success(bytes::copy_from(std::to_string(size)));
  }));
  auto c = wait(*n->submit("tree", bytes::copy_from("3")));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->value.view(), "15");
  const auto stats = n->stats();
  EXPECT_LE(stats.peak_running, 2u);
  EXPECT_EQ(stats.parked, 0u);
  EXPECT_EQ(stats.completed, 15u);
}

TEST(node, a_parent_cancelled_while_it_awaits_its_child_stops_waiting_at_once) {
  auto n = start_node(1);
  ASSERT_TRUE(n->declare_queue("nobody"));  // the child waits there for good
  node* self = n.get();
  std::atomic<bool> saw_cancelled{false};
  ASSERT_TRUE(n->handle("parent", [&, self](task_context& ctx) -> asio::awaitable<task_result> {
    auto child = co_await self->async_submit("nobody", bytes::copy_from("x"));
    if (!child) co_return task_result::failure(child.err().message);
    auto done = co_await ctx.without_permit(child->async_wait());
    saw_cancelled = !done && done.err().code == errc::cancelled;
    co_return task_result::failure("stopped waiting");
  }));
  auto parent = n->submit("parent", {});
  ASSERT_TRUE(parent);
  const auto until = std::chrono::steady_clock::now() + patience;
  while (n->stats().parked == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(n->stats().parked, 1u) << "the parent awaits its child";
  parent->cancel();
  auto c = wait(*parent);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state, task_state::cancelled);
  while (!saw_cancelled && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(saw_cancelled) << "the handler's wait for its child ended with the cancel";
  EXPECT_EQ(n->stats().parked, 0u);
}

TEST(node, failing_handler_retries_then_succeeds) {
  auto n = start_node();
  std::atomic<int> calls{0};
  ASSERT_TRUE(n->handle("flaky", [&](task_context& ctx) -> asio::awaitable<task_result> {
    ++calls;
    if (ctx.attempt() < 3) co_return task_result::failure("not yet");
    co_return task_result::success({});
  }));
  auto c = wait(*n->submit("flaky", {}, {.max_attempts = 5}));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state, task_state::succeeded);
  EXPECT_EQ(c->attempts, 3);
  EXPECT_EQ(calls.load(), 3);
}

TEST(node, cancel_of_a_queued_task_is_reported) {
  auto n = start_node();
  ASSERT_TRUE(n->declare_queue("parked"));
  auto h = n->submit("parked", {});
  h->cancel();
  auto c = wait(*h);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->state, task_state::cancelled);
}

TEST(node, cancelled_running_handler_sees_cancellation_at_its_next_await) {
  auto n = start_node();
  std::atomic<bool> started{false};
  std::promise<std::string> seen;
  ASSERT_TRUE(n->handle("sleepy", [&](task_context&) -> asio::awaitable<task_result> {
    started = true;
    co_await wait_to_be_cancelled(seen);
    co_return task_result::success({});
  }));
  auto h = n->submit("sleepy", {});
  for (int i = 0; i < 1000 && !started; ++i) std::this_thread::sleep_for(1ms);
  h->cancel();
  EXPECT_EQ(wait(*h)->state, task_state::cancelled);
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(f.get(), "aborted");
}

// The embedded twin of the runtime client's bug (runtime_client_test): a
// handler that finishes at once, then one started after it in the same
// turn, whose cancellation must still reach it.
TEST(node, cancel_reaches_a_handler_started_right_after_one_that_finished_at_once) {
  auto n = start_node();
  ASSERT_TRUE(n->declare_queue("mixed"));
  auto fast = n->submit("mixed", bytes::copy_from("fast"));
  auto slow = n->submit("mixed", bytes::copy_from("slow"));
  std::atomic<bool> started{false};
  std::promise<std::string> seen;
  ASSERT_TRUE(n->handle("mixed", [&](task_context& t) -> asio::awaitable<task_result> {
    if (t.payload().view() == "fast") co_return task_result::success({});
    started = true;
    co_await wait_to_be_cancelled(seen);
    co_return task_result::success({});
  }));
  EXPECT_EQ(wait(*fast)->state, task_state::succeeded);
  for (int i = 0; i < 1000 && !started; ++i) std::this_thread::sleep_for(1ms);
  slow->cancel();
  EXPECT_EQ(wait(*slow)->state, task_state::cancelled);
  auto f = seen.get_future();
  ASSERT_EQ(f.wait_for(patience), std::future_status::ready);
  EXPECT_EQ(f.get(), "aborted");
}

TEST(node, duplicate_idempotency_key_joins_the_first_task) {
  auto n = start_node();
  std::atomic<int> calls{0};
  ASSERT_TRUE(n->handle("once", [&](task_context&) -> asio::awaitable<task_result> {
    ++calls;
    co_return task_result::success(bytes::copy_from("v"));
  }));
  auto a = n->submit("once", {}, {.idempotency_key = "order-17"});
  auto b = n->submit("once", {}, {.idempotency_key = "order-17"});
  auto ca = wait(*a), cb = wait(*b);
  ASSERT_TRUE(ca && cb);
  EXPECT_EQ(ca->id, cb->id);
  EXPECT_EQ(calls.load(), 1);
}

TEST(node, delayed_task_does_not_run_before_its_time) {
  auto n = start_node();
  std::atomic<std::int64_t> ran_at{0};
  ASSERT_TRUE(n->handle("later", [&](task_context&) -> asio::awaitable<task_result> {
    ran_at = std::chrono::steady_clock::now().time_since_epoch().count();
    co_return task_result::success({});
  }));
  const auto submitted = std::chrono::steady_clock::now();
  core::task_options o;
  o.not_before = core::time_point{std::chrono::duration_cast<core::duration>((submitted + 50ms).time_since_epoch())};
  ASSERT_TRUE(wait(*n->submit("later", {}, o)));
  EXPECT_GE(ran_at.load(), (submitted + 50ms).time_since_epoch().count());
}

TEST(node, invalid_options_are_rejected_with_a_message) {
  auto n = start_node();
  ASSERT_TRUE(n->handle("echo", echo()));
  auto h = n->submit("echo", {}, {.max_attempts = 60000});
  ASSERT_FALSE(h);
  EXPECT_EQ(h.code(), errc::invalid_argument);
  EXPECT_FALSE(h.err().message.empty());
}

TEST(node, submit_batch_runs_every_task_and_is_all_or_nothing) {
  auto n = start_node(4, 10);
  ASSERT_TRUE(n->handle("echo", echo()));
  std::vector<bytes> payloads;
  for (int i = 0; i < 8; ++i) payloads.push_back(bytes::copy_from(std::to_string(i)));
  auto hs = n->submit_batch("echo", payloads);
  ASSERT_TRUE(hs);
  ASSERT_EQ(hs->size(), 8u);
  for (int i = 0; i < 8; ++i) {
    auto c = wait((*hs)[i]);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->value.view(), std::to_string(i));
  }
  auto too_many = n->submit_batch("echo", std::vector<bytes>(11));
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.code(), errc::invalid_argument) << "a batch over the node's capacity can never fit";
  EXPECT_EQ(n->submit_batch("nobody", std::vector<bytes>(2)).code(), errc::unknown_queue);
}

TEST(node, status_reports_a_live_task_and_forgets_an_ended_one) {
  auto n = start_node();
  ASSERT_TRUE(n->declare_queue("parked"));
  auto h = n->submit("parked", {}, {.priority = 3});
  ASSERT_TRUE(h);
  core::result<core::task_status> s = core::make_error(errc::unknown_task, "");
  for (int i = 0; i < 1000 && !(s = n->status(h->id())); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(s) << s.err().message;
  EXPECT_EQ(s->state, task_state::queued);
  h->cancel();
  ASSERT_TRUE(wait(*h));
  EXPECT_EQ(n->status(h->id()).code(), errc::unknown_task);
}

TEST(node, bad_config_throws_at_start) {
  node_config c;
  c.work_limit = 0;
  EXPECT_THROW(node::start(c), std::invalid_argument);
}

namespace {

/// Records what a gateway's observer hears.
class recording_observer final : public core::task_observer {
 public:
  void on_accepted(task_id id, bool, core::observer_tag) override { accepted = id; }
  void on_state(task_state, std::uint16_t, core::observer_tag) override {}
  void on_outcome(const task_outcome& o, core::observer_tag) override { outcome.set_value(o); }
  void on_rejected(const core::error& why, core::observer_tag) override { outcome.set_exception(std::make_exception_ptr(std::runtime_error(why.message))); }
  std::atomic<task_id> accepted{};
  std::promise<task_outcome> outcome;
};

}  // namespace

TEST(node, an_observed_submit_reports_its_outcome_to_its_observer_and_checks_like_submit) {
  auto n = node::start();
  ASSERT_TRUE(n->handle("echo", [](task_context& t) -> asio::awaitable<task_result> {
    co_return task_result::success(t.payload());
  }));
  auto observer = std::make_shared<recording_observer>();
  auto done = observer->outcome.get_future();
  auto id = n->submit_observed("echo", bytes::copy_from("hi"), task_options{}, when_full::fail, observer);
  ASSERT_TRUE(id);
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  const auto o = done.get();
  EXPECT_EQ(o.id, *id);
  EXPECT_EQ(o.state, task_state::succeeded);
  EXPECT_EQ(o.value.view(), "hi");
  EXPECT_EQ(observer->accepted.load(), *id);
  auto unknown = n->submit_observed("nowhere", bytes::copy_from("x"), task_options{}, when_full::fail,
                                    std::make_shared<recording_observer>());
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.err().code, errc::unknown_queue);
}

namespace {

/// A watcher recording what the broker tells it, from the broker's thread.
struct watch_recorder : core::task_observer {
  std::mutex mutex;
  std::vector<task_state> states;
  std::promise<std::optional<task_outcome>> ended;  // the outcome, or nothing when rejected
  std::optional<errc> rejected;
  void on_accepted(task_id, bool, core::observer_tag) override { ADD_FAILURE() << "a watcher is not told of acceptance"; }
  void on_state(task_state s, std::uint16_t, core::observer_tag) override {
    std::lock_guard lock(mutex);
    states.push_back(s);
  }
  void on_outcome(const task_outcome& o, core::observer_tag) override { ended.set_value(o); }
  void on_rejected(const core::error& why, core::observer_tag) override {
    rejected = why.code;
    ended.set_value(std::nullopt);
  }
};

}  // namespace

TEST(node, anyone_can_watch_a_live_task_to_its_outcome) {
  auto n = start_node();
  std::promise<void> release;
  auto released = release.get_future().share();
  ASSERT_TRUE(n->handle("slow", [released](task_context& ctx) -> asio::awaitable<task_result> {
    released.wait();
    co_return task_result::success(ctx.payload());
  }));
  auto h = n->post("slow", bytes::copy_from("done"));  // fire and forget: no handle to wait on
  ASSERT_TRUE(h);
  auto w = std::make_shared<watch_recorder>();
  auto outcome = w->ended.get_future();
  n->watch(*h, w);
  release.set_value();
  ASSERT_EQ(outcome.wait_for(patience), std::future_status::ready);
  auto o = outcome.get();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->state, task_state::succeeded);
  EXPECT_EQ(o->value.view(), "done");
  std::lock_guard lock(w->mutex);
  ASSERT_FALSE(w->states.empty()) << "the state it joined in, at least";
}

TEST(node, watching_an_unknown_task_is_rejected) {
  auto n = start_node();
  auto w = std::make_shared<watch_recorder>();
  auto outcome = w->ended.get_future();
  n->watch(task_id{424242}, w);
  ASSERT_EQ(outcome.wait_for(patience), std::future_status::ready);
  EXPECT_FALSE(outcome.get());
  EXPECT_EQ(w->rejected, errc::unknown_task);
}
