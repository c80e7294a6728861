// The C++ runtime client against a real gateway on loopback: tasks run under
// its capacity, results and failures reach the node, progress and logs reach
// the task's status, cancels reach handlers, and a dropped connection is
// resumed with the leases kept (or, past the lease TTL, the tasks move on).
#include <gtest/gtest.h>

#include <optional>

#include <future>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "drover/net/binary_frame.hpp"
#include "drover/net/compact_header.hpp"
#include "drover/net/runtime_client.hpp"
#include "support/gateway_fixture.hpp"
#include "support/tcp_proxy.hpp"
#include "support/ws_client.hpp"

using namespace drover;
using namespace drover::test_support;
using namespace std::chrono_literals;
namespace basio = boost::asio;

namespace {

basio::awaitable<void> sleep_for(std::chrono::milliseconds d) {
  basio::steady_timer t(co_await basio::this_coro::executor, d);
  co_await t.async_wait(basio::use_awaitable);
}

/// A handler's sleep of 10 s; `aborted` tells that it was cancelled first.
basio::awaitable<void> sleep_until_cancelled(std::atomic<bool>& aborted) {
  try {
    co_await sleep_for(10s);
  } catch (const boost::system::system_error&) {
    aborted = true;
  }
}

/// Suspends a handler until the test opens it.
struct gate {
  std::atomic<bool> open{false};
  basio::awaitable<void> pass() {
    while (!open) co_await sleep_for(1ms);
  }
};

net::runtime_client_config runtime_config(std::uint16_t port, std::uint32_t capacity) {
  net::runtime_client_config c;
  c.port = port;
  c.queues = {"resize"};
  c.capacity = capacity;
  c.reconnect_first = 5ms;
  c.reconnect_max = 50ms;
  c.seed = 7;
  return c;
}

class runtime_client_test : public gateway_fixture {};

/// What became of runtime sessions, from `GET /v1/runtimes`.
json::object session_counts(std::uint16_t port) {
  return call(port, http::verb::get, "/v1/runtimes").json().at("sessions").as_object();
}

class runtime_client_resume_test : public gateway_fixture {
 protected:
  runtime_client_resume_test() { gateway_config.runtime_lease_ttl = 300ms; }
};

}  // namespace

TEST_F(runtime_client_test, runs_tasks_and_reports_their_results) {
  auto client = net::runtime_client::start(runtime_config(port, 8), [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    std::string out(t.payload_view().rbegin(), t.payload_view().rend());
    co_return core::attempt_result::success(core::bytes::copy_from(out));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  std::vector<task_handle> handles;
  for (int i = 0; i < 200; ++i) handles.push_back(*n->submit("resize", core::bytes::copy_from("ab" + std::to_string(i))));
  for (int i = 0; i < 200; ++i) {
    auto c = handles[i].wait_for(10s);
    ASSERT_TRUE(c && *c) << i;
    std::string want = "ab" + std::to_string(i);
    std::reverse(want.begin(), want.end());
    EXPECT_EQ((*c)->value.to_string(), want);
    EXPECT_EQ((*c)->attempts, 1);
  }
  EXPECT_EQ(client->stats().succeeded, 200u);
}

TEST_F(runtime_client_test, never_runs_more_handlers_than_its_capacity) {
  std::atomic<int> now{0}, peak{0};
  auto client = net::runtime_client::start(runtime_config(port, 3), [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    peak = std::max(peak.load(), ++now);
    co_await sleep_for(5ms);
    --now;
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  std::vector<task_handle> handles;
  for (int i = 0; i < 30; ++i) handles.push_back(*n->submit("resize", core::bytes::copy_from("x")));
  for (auto& h : handles) ASSERT_TRUE(h.wait_for(10s));
  EXPECT_EQ(peak.load(), 3);
}

TEST_F(runtime_client_test, a_handler_that_throws_is_reported_as_a_failure) {
  auto client = net::runtime_client::start(runtime_config(port, 1), [](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    throw std::runtime_error("disk on fire");
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  core::task_options o;
  o.max_attempts = 1;
  auto h = *n->submit("resize", core::bytes::copy_from("x"), o);
  auto c = h.wait_for(10s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->state, task_state::dead);
  EXPECT_NE((*c)->err.message.find("disk on fire"), std::string::npos) << (*c)->err.message;
}

TEST_F(runtime_client_test, an_immediate_handler_runs_tasks_and_reports_results_and_failures) {
  auto client = net::runtime_client::start(runtime_config(port, 8), [](net::runtime_task& t) {
    const auto payload = t.payload_view();
    if (payload == "boom") throw std::runtime_error("disk on fire");
    if (payload == "bad") return core::attempt_result::failure("corrupt image", false);
    t.log("reversed");
    return core::attempt_result::success(core::bytes::copy_from(std::string(payload.rbegin(), payload.rend())));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  std::vector<task_handle> handles;
  for (int i = 0; i < 200; ++i) handles.push_back(*n->submit("resize", core::bytes::copy_from("ab" + std::to_string(i))));
  core::task_options once;
  once.max_attempts = 1;
  auto bad = *n->submit("resize", core::bytes::copy_from("bad"), once);
  auto boom = *n->submit("resize", core::bytes::copy_from("boom"), once);
  for (int i = 0; i < 200; ++i) {  // 25 times the capacity: demand is asked for again and again
    auto c = handles[i].wait_for(10s);
    ASSERT_TRUE(c && *c) << i;
    std::string want = "ab" + std::to_string(i);
    std::reverse(want.begin(), want.end());
    EXPECT_EQ((*c)->value.to_string(), want);
  }
  auto bad_outcome = bad.wait_for(10s);
  ASSERT_TRUE(bad_outcome && *bad_outcome);
  EXPECT_EQ((*bad_outcome)->state, task_state::failed);
  EXPECT_EQ((*bad_outcome)->err.message, "corrupt image");
  auto boom_outcome = boom.wait_for(10s);
  ASSERT_TRUE(boom_outcome && *boom_outcome);
  EXPECT_NE((*boom_outcome)->err.message.find("disk on fire"), std::string::npos) << (*boom_outcome)->err.message;
  auto submitted = call(port, http::verb::post, "/v1/queues/resize/tasks", "img");  // its notes go out before its result
  ASSERT_EQ(submitted.status, 202u);
  const auto id = submitted.json().at("id").as_int64();
  auto status = call(port, http::verb::get, "/v1/tasks/" + std::to_string(id) + "?wait_ms=5000");
  ASSERT_EQ(status.status, 200u) << status.body;
  EXPECT_EQ(status.json().at("state").as_string(), "succeeded");
  EXPECT_EQ(status.json().at("logs").as_array().at(0).as_string(), "reversed");
  const auto stats = client->stats();
  EXPECT_EQ(stats.received, 203u);
  EXPECT_EQ(stats.succeeded, 201u);
  EXPECT_EQ(stats.failed, 2u);
  EXPECT_EQ(stats.running, 0u);
}

TEST_F(runtime_client_test, demand_is_asked_for_in_steps_while_the_node_still_holds_credit) {
  gate g;
  auto config = runtime_config(port, 4);
  config.demand_step = 2;
  auto client = net::runtime_client::start(config, [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    if (t.payload_view() == "held") {
      t.log("started");
      co_await g.pass();
    }
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto runtime = [&] { return call(port, http::verb::get, "/v1/runtimes").json().at("runtimes").as_array().at(0).as_object(); };
  ASSERT_TRUE(eventually([&] { return runtime().at("demand").as_int64() == 4; }));

  // One slot frees with three still granted: less than a step, so no demand.
  auto quick = *n->submit("resize", core::bytes::copy_from("quick"));
  ASSERT_TRUE(quick.wait_for(5s));
  // The held task's log line leaves the runtime after any demand for the
  // quick one would have: once the node has it, the count is settled.
  auto held = *n->submit("resize", core::bytes::copy_from("held"));
  ASSERT_TRUE(eventually([&] {
    auto status = call(port, http::verb::get, "/v1/tasks/" + std::to_string(held.id().value)).json().as_object();
    auto logs = status.if_contains("logs");
    return logs && logs->is_array() && !logs->as_array().empty();
  }));
  auto r = runtime();
  EXPECT_EQ(r.at("in_flight").as_int64(), 1);
  EXPECT_EQ(r.at("demand").as_int64(), 2) << json::serialize(r);

  // Two slots free once it ends: a step, asked for at once.
  g.open = true;
  ASSERT_TRUE(held.wait_for(5s));
  EXPECT_TRUE(eventually([&] { return runtime().at("demand").as_int64() == 4; })) << json::serialize(runtime());
}

TEST_F(runtime_client_test, progress_and_log_lines_reach_the_task_status) {
  auto client = net::runtime_client::start(runtime_config(port, 1), [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    t.progress(0.5, "half way");
    t.log("decoded 640x480");
    co_await sleep_for(20ms);  // the notes go out before the result
    co_return core::attempt_result::success(core::bytes::copy_from("ok"));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto submitted = call(port, http::verb::post, "/v1/queues/resize/tasks", "img");
  ASSERT_EQ(submitted.status, 202u);
  const auto id = submitted.json().at("id").as_int64();
  auto status = call(port, http::verb::get, "/v1/tasks/" + std::to_string(id) + "?wait_ms=5000");
  ASSERT_EQ(status.status, 200u) << status.body;
  const auto o = status.json().as_object();
  EXPECT_EQ(o.at("state").as_string(), "succeeded");
  EXPECT_EQ(o.at("progress").at("fraction").as_double(), 0.5);
  EXPECT_EQ(o.at("progress").at("note").as_string(), "half way");
  EXPECT_EQ(o.at("logs").as_array().at(0).as_string(), "decoded 640x480");
}

TEST_F(runtime_client_test, a_cancel_reaches_the_running_handler) {
  std::atomic<bool> aborted{false};
  auto client = net::runtime_client::start(runtime_config(port, 1), [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    co_await sleep_until_cancelled(aborted);
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto h = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return client->stats().running == 1; }));
  h.cancel();
  ASSERT_TRUE(eventually([&] { return aborted.load(); }));
  auto c = h.wait_for(5s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->state, task_state::cancelled);
  EXPECT_TRUE(eventually([&] { return client->stats().cancelled == 1; }));
}

// A handler that finishes without suspending is resumed once more by asio
// after its coroutine ends, through the cancellation slot its task bound; the
// task (and its cancellation signal) must still be alive then. When it was
// not, the stale slot cleared whatever the recycled memory held next: the
// cancellation of the task started after it in the same message, which then
// never reached its handler (and, once the memory moved on, crashed).
TEST_F(runtime_client_test, a_cancel_reaches_a_handler_started_right_after_one_that_finished_at_once) {
  std::atomic<bool> aborted{false};
  std::atomic<int> slow_started{0};
  // Both tasks are queued before the runtime asks, so they come as one message.
  auto fast = *n->submit("resize", core::bytes::copy_from("fast"));
  auto slow = *n->submit("resize", core::bytes::copy_from("slow"));
  auto client = net::runtime_client::start(runtime_config(port, 2), [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    if (t.payload_view() == "fast") co_return core::attempt_result::success({});
    ++slow_started;
    co_await sleep_until_cancelled(aborted);
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto f = fast.wait_for(5s);
  ASSERT_TRUE(f && *f);
  ASSERT_TRUE(eventually([&] { return slow_started.load() == 1; }));
  slow.cancel();
  EXPECT_TRUE(eventually([&] { return aborted.load(); }));
  auto c = slow.wait_for(5s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->state, task_state::cancelled);
}

TEST_F(runtime_client_test, clients_sharing_one_io_thread_all_serve_and_one_stopping_leaves_the_others_serving) {
  const auto io = net::runtime_io::start();
  std::mutex m;
  std::set<std::thread::id> threads;
  auto echo = [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    {
      std::lock_guard lock(m);
      threads.insert(std::this_thread::get_id());
    }
    co_return core::attempt_result::success(t.payload());
  };
  std::vector<std::unique_ptr<net::runtime_client>> clients;
  for (int i = 0; i < 4; ++i) {
    auto config = runtime_config(port, 1);
    config.name = "shared-" + std::to_string(i);
    clients.push_back(net::runtime_client::start(config, echo, io));
  }
  for (auto& c : clients) ASSERT_TRUE(c->wait_connected(5s));
  auto run = [&](int count) {
    std::vector<task_handle> handles;
    for (int i = 0; i < count; ++i) handles.push_back(*n->submit("resize", core::bytes::copy_from("x")));
    for (auto& h : handles) {
      auto c = h.wait_for(10s);
      ASSERT_TRUE(c && *c);
      EXPECT_EQ((*c)->state, task_state::succeeded);
    }
  };
  run(40);
  const auto first_served = clients[0]->stats().succeeded;
  clients[0]->stop();
  clients[0].reset();
  run(20);
  std::uint64_t served = first_served;
  for (std::size_t i = 1; i < clients.size(); ++i) served += clients[i]->stats().succeeded;
  EXPECT_EQ(served, 60u);
  EXPECT_EQ(threads.size(), 1u);
}

TEST_F(runtime_client_test, a_client_stopped_while_its_handler_ignores_cancellation_leaves_the_shared_thread_sound) {
  const auto io = net::runtime_io::start();
  std::atomic<bool> started{false}, finished{false};
  auto stubborn = net::runtime_client::start(runtime_config(port, 1), [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    co_await basio::this_coro::reset_cancellation_state(basio::disable_cancellation());
    started = true;
    co_await sleep_for(300ms);
    t.progress(0.5);  // after its client is gone: the connection state must still be there
    finished = true;
    co_return core::attempt_result::success({});
  }, io);
  ASSERT_TRUE(stubborn->wait_connected(5s));
  auto first = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  stubborn->stop(0ms);
  stubborn.reset();
  ASSERT_TRUE(eventually([&] { return finished.load(); }));
  auto other = net::runtime_client::start(runtime_config(port, 1), [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    co_return core::attempt_result::success(t.payload());
  }, io);
  ASSERT_TRUE(other->wait_connected(5s));
  auto second = *n->submit("resize", core::bytes::copy_from("y"));
  for (auto* h : {&first, &second}) {
    auto c = h->wait_for(10s);
    ASSERT_TRUE(c && *c);
    EXPECT_EQ((*c)->state, task_state::succeeded);
  }
}

TEST_F(runtime_client_test, a_wrong_token_is_refused_and_remembered) {
  gw->stop();
  gateway_config.tokens = {"right"};
  auto restarted = net::gateway::start(*n, gateway_config);
  ASSERT_TRUE(restarted);
  gw = std::move(*restarted);
  auto config = runtime_config(gw->port(), 1);
  config.token = "wrong";
  auto client = net::runtime_client::start(config, [](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    co_return core::attempt_result::success({});
  });
  EXPECT_FALSE(client->wait_connected(200ms));
  EXPECT_NE(client->stats().last_error.find("unauthorized"), std::string::npos) << client->stats().last_error;
}

class runtime_client_heartbeat_test : public gateway_fixture {
 protected:
  runtime_client_heartbeat_test() { gateway_config.heartbeat_interval = 50ms; }
};

TEST_F(runtime_client_heartbeat_test, a_node_gone_silent_is_left_and_reconnected_to_when_it_answers_again) {
  tcp_proxy proxy(port);
  auto client = net::runtime_client::start(runtime_config(proxy.port(), 1),
                                           [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
                                             co_return core::attempt_result::success(core::bytes::copy_from(t.payload().view()));
                                           });
  ASSERT_TRUE(client->wait_connected(5s));
  std::this_thread::sleep_for(450ms);  // over twice the silence limit (200 ms): the node's pings keep it alive
  EXPECT_TRUE(client->stats().connected);
  EXPECT_EQ(client->stats().connects, 1u);
  proxy.set_frozen(true);  // nothing gets through, and nothing says so
  ASSERT_TRUE(eventually([&] { return !client->stats().connected; }, 3s)) << "100 ms of silence, a ping unanswered, gone at 200 ms";
  proxy.set_frozen(false);
  ASSERT_TRUE(eventually([&] { return client->stats().connected && client->stats().connects == 2; }, 5s));
  auto h = *n->submit("resize", core::bytes::copy_from("after"));
  auto c = h.wait_for(5s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->value.to_string(), "after");
}

TEST_F(runtime_client_resume_test, a_dropped_connection_is_resumed_and_the_running_task_keeps_its_lease) {
  tcp_proxy proxy(port);
  gate g;
  auto client = net::runtime_client::start(runtime_config(proxy.port(), 2), [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    co_await g.pass();
    co_return core::attempt_result::success(core::bytes::copy_from("after the drop"));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto h = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return client->stats().running == 1; }));
  proxy.sever();
  ASSERT_TRUE(eventually([&] { return client->stats().resumed == 1 && client->stats().connected; }));
  g.open = true;
  auto c = h.wait_for(5s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->state, task_state::succeeded);
  EXPECT_EQ((*c)->attempts, 1);  // the same lease: never handed to anyone else
  EXPECT_EQ((*c)->value.to_string(), "after the drop");
  const auto counts = session_counts(port);
  EXPECT_EQ(counts.at("parked").to_number<int>(), 1) << json::serialize(counts);
  EXPECT_EQ(counts.at("resumed").to_number<int>(), 1) << json::serialize(counts);
  EXPECT_EQ(counts.at("expired").to_number<int>(), 0) << json::serialize(counts);
}

TEST_F(runtime_client_resume_test, a_task_delivered_while_the_connection_was_down_arrives_after_the_resume) {
  tcp_proxy proxy(port);
  auto client = net::runtime_client::start(runtime_config(proxy.port(), 4), [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    co_return core::attempt_result::success(t.payload());
  });
  ASSERT_TRUE(client->wait_connected(5s));
  proxy.set_accepting(false);
  proxy.sever();
  ASSERT_TRUE(eventually([&] { return !client->stats().connected; }));
  // The parked session still has demand: these are leased to it meanwhile.
  auto a = *n->submit("resize", core::bytes::copy_from("a"));
  auto b = *n->submit("resize", core::bytes::copy_from("b"));
  std::this_thread::sleep_for(50ms);
  proxy.set_accepting(true);
  for (auto* h : {&a, &b}) {
    auto c = h->wait_for(5s);
    ASSERT_TRUE(c && *c);
    EXPECT_EQ((*c)->state, task_state::succeeded);
  }
  EXPECT_EQ(client->stats().resumed, 1u);
}

TEST_F(runtime_client_resume_test, after_a_resume_with_tasks_sent_again_the_whole_capacity_is_still_asked_for) {
  // The two tasks leased while the connection was down are sent again after
  // the resume; they fill demand the welcome already counted, so they must
  // not be counted a second time (that left the runtime asking beyond its
  // capacity, refused as over_capacity, and then using half of it).
  tcp_proxy proxy(port);
  gate g;
  auto client = net::runtime_client::start(runtime_config(proxy.port(), 4), [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    if (t.payload_view() == "hold") co_await g.pass();
    co_return core::attempt_result::success(t.payload());
  });
  ASSERT_TRUE(client->wait_connected(5s));
  proxy.set_accepting(false);
  proxy.sever();
  ASSERT_TRUE(eventually([&] { return !client->stats().connected; }));
  auto a = *n->submit("resize", core::bytes::copy_from("a"));
  auto b = *n->submit("resize", core::bytes::copy_from("b"));
  std::this_thread::sleep_for(50ms);
  proxy.set_accepting(true);
  ASSERT_TRUE(a.wait_for(5s));
  ASSERT_TRUE(b.wait_for(5s));
  std::vector<task_handle> held;
  for (int i = 0; i < 4; ++i) held.push_back(*n->submit("resize", core::bytes::copy_from("hold")));
  EXPECT_TRUE(eventually([&] { return client->stats().running == 4; }, 5s))
      << "running " << client->stats().running << ", last error: " << client->stats().last_error;
  EXPECT_EQ(client->stats().last_error, "");
  g.open = true;
  for (auto& h : held) ASSERT_TRUE(h.wait_for(5s));
}

TEST_F(runtime_client_resume_test, a_task_finished_while_disconnected_is_reported_after_the_resume_and_not_run_again) {
  tcp_proxy proxy(port);
  gate g;
  std::atomic<int> runs{0};
  auto client = net::runtime_client::start(runtime_config(proxy.port(), 1), [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    ++runs;
    co_await g.pass();
    co_return core::attempt_result::success(core::bytes::copy_from("once"));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto h = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return client->stats().running == 1; }));
  proxy.set_accepting(false);
  proxy.sever();
  ASSERT_TRUE(eventually([&] { return !client->stats().connected; }));
  g.open = true;  // finishes while the connection is down: its report waits
  ASSERT_TRUE(eventually([&] { return client->stats().running == 0; }));
  proxy.set_accepting(true);
  auto c = h.wait_for(5s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->value.to_string(), "once");
  EXPECT_EQ((*c)->attempts, 1);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(runs.load(), 1) << "the resume listed the lease, so the node did not send the task again";
  EXPECT_EQ(client->stats().resumed, 1u);
}

TEST_F(runtime_client_resume_test, past_the_lease_ttl_the_tasks_of_a_vanished_runtime_go_to_another) {
  tcp_proxy proxy(port);
  gate never;
  auto vanished = net::runtime_client::start(runtime_config(proxy.port(), 1), [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    co_await never.pass();
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(vanished->wait_connected(5s));
  auto h = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return vanished->stats().running == 1; }));
  proxy.set_accepting(false);
  proxy.sever();
  auto other = net::runtime_client::start(runtime_config(port, 1), [](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    co_return core::attempt_result::success(core::bytes::copy_from("attempt " + std::to_string(t.attempt())));
  });
  auto c = h.wait_for(5s);  // after the 300 ms lease TTL
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->value.to_string(), "attempt 2");
  const auto counts = session_counts(port);
  EXPECT_EQ(counts.at("expired").to_number<int>(), 1) << json::serialize(counts);
  EXPECT_EQ(counts.at("resumed").to_number<int>(), 0) << json::serialize(counts);
  never.open = true;
  vanished->stop(0ms);
}

TEST_F(runtime_client_test, connected_runtimes_are_listed_with_demand_and_in_flight_counts) {
  gate g;
  auto config = runtime_config(port, 3);
  config.name = "lister";
  auto client = net::runtime_client::start(config, [&](net::runtime_task&) -> basio::awaitable<core::attempt_result> {
    co_await g.pass();
    co_return core::attempt_result::success({});
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto h = *n->submit("resize", core::bytes::copy_from("x"));
  ASSERT_TRUE(eventually([&] { return client->stats().running == 1; }));
  json::object r;
  ASSERT_TRUE(eventually([&] {
    auto list = call(port, http::verb::get, "/v1/runtimes").json().at("runtimes").as_array();
    if (list.size() != 1) return false;
    r = list[0].as_object();
    return r.at("in_flight").as_int64() == 1 && r.at("demand").as_int64() == 2;
  })) << json::serialize(r);
  EXPECT_EQ(r.at("name").as_string(), "lister");
  EXPECT_EQ(r.at("transport").as_string(), "websocket");
  EXPECT_EQ(r.at("capacity").as_int64(), 3);
  EXPECT_EQ(r.at("connected").as_bool(), true);
  g.open = true;
  ASSERT_TRUE(h.wait_for(5s));
}

TEST_F(runtime_client_test, task_events_stream_state_progress_logs_then_the_outcome) {
  gate g;
  auto client = net::runtime_client::start(runtime_config(port, 1), [&](net::runtime_task& t) -> basio::awaitable<core::attempt_result> {
    t.progress(0.25, "quarter");
    t.log("line a");
    co_await g.pass();
    co_return core::attempt_result::success(core::bytes::copy_from("done"));
  });
  ASSERT_TRUE(client->wait_connected(5s));
  auto submitted = call(port, http::verb::post, "/v1/queues/resize/tasks", "x");
  const auto id = std::to_string(submitted.json().at("id").to_number<std::uint64_t>());
  ASSERT_TRUE(eventually([&] { return client->stats().running == 1; }));
  // The stream ends with the task: read it whole on another thread.
  auto events = std::async(std::launch::async, [&] { return call(port, http::verb::get, "/v1/tasks/" + id + "/events"); });
  std::this_thread::sleep_for(50ms);
  g.open = true;
  ASSERT_EQ(events.wait_for(5s), std::future_status::ready);
  const auto body = events.get().body;
  const auto at = [&](const std::string& s) { return body.find(s); };
  EXPECT_NE(at("event: state"), std::string::npos) << body;
  EXPECT_NE(at("\"quarter\""), std::string::npos) << body;
  EXPECT_NE(at("\"line a\""), std::string::npos) << body;
  ASSERT_NE(at("event: outcome"), std::string::npos) << body;
  EXPECT_LT(at("event: progress"), at("event: outcome"));
  EXPECT_NE(body.find("succeeded", at("event: outcome")), std::string::npos) << body;
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/9999/events").status, 404u);
}

namespace {

/// A node scripted by hand: it answers the hello with a welcome that
/// carries `headers` (or, empty, none: a node older than compact headers)
/// and `batch`, sends `tasks` JSON task records (leases 9, 10, ...) in one
/// message once asked, and returns the first binary message the runtime
/// sends back (its results). `asked` is the hello's ask.
std::string result_from_scripted_node(const std::string& headers, std::string& asked, bool batch = false,
                                      std::uint32_t tasks = 1) {
  namespace websocket = boost::beast::websocket;
  basio::io_context io;
  basio::ip::tcp::acceptor acceptor(io, {basio::ip::make_address("127.0.0.1"), 0});
  auto config = runtime_config(acceptor.local_endpoint().port(), tasks);
  config.resumable = false;
  auto client = net::runtime_client::start(config, [](net::runtime_task& t) {
    return core::attempt_result::success(core::bytes::copy_from(t.payload_view()));
  });
  websocket::stream<basio::ip::tcp::socket> ws(acceptor.accept());
  ws.accept();
  auto read_text = [&] {
    boost::beast::flat_buffer b;
    ws.read(b);
    return json::parse(boost::beast::buffers_to_string(b.data())).as_object();
  };
  const auto hello = read_text();
  asked = hello.contains("headers") ? std::string(hello.at("headers").as_string()) : "";
  json::object welcome{{"type", "welcome"}, {"session", 1}, {"capacity", tasks}, {"resumed", false}, {"granted", 0},
                       {"lease_ttl_ms", 0}, {"heartbeat_ms", 5000}, {"batch", batch}};
  if (!headers.empty()) welcome["headers"] = headers;
  ws.text(true);
  ws.write(basio::buffer(json::serialize(welcome)));
  // Demand comes as a text frame, or with batch as a record of a binary message.
  for (bool demanded = false; !demanded;) {
    boost::beast::flat_buffer b;
    ws.read(b);
    const auto m = boost::beast::buffers_to_string(b.data());
    if (ws.got_text()) {
      demanded = json::parse(m).as_object().at("type").as_string() == "demand";
      continue;
    }
    const auto fault = net::for_each_record(m, [&](const net::frame_record& r) { demanded |= r.header.string("type") == "demand"; });
    EXPECT_FALSE(fault) << fault.message;
  }
  ws.binary(true);
  std::string message;
  for (std::uint32_t i = 0; i < tasks; ++i) {
    json::object task{{"type", "task"}, {"task", 5 + i}, {"lease", 9 + i}, {"slot", 0}, {"attempt", 1},
                      {"queue", "resize"}, {"deadline_ms", 30000}, {"meta", json::object()}};
    if (i + 1 < tasks) task["bytes"] = 7;
    message += ws_client::frame(task, "payload");
  }
  ws.write(basio::buffer(message));
  std::string result;
  while (result.empty()) {
    boost::beast::flat_buffer b;
    ws.read(b);
    if (ws.got_binary()) result = boost::beast::buffers_to_string(b.data());
  }
  // The client's close is answered by reading on until it ends.
  std::thread stopper([&] { client->stop(); });
  for (boost::system::error_code ec; !ec;) {
    boost::beast::flat_buffer b;
    ws.read(b, ec);
  }
  stopper.join();
  return result;
}

/// The first byte of a message's first record's header.
unsigned char header_start(const std::string& message) { return static_cast<unsigned char>(message.at(4)); }

}  // namespace

TEST(runtime_client_headers, results_go_compact_when_the_welcome_says_so_and_json_when_it_does_not) {
  std::string asked;
  const auto compact = result_from_scripted_node("compact", asked);
  EXPECT_EQ(asked, "compact") << "the client asks for compact headers by default";
  EXPECT_EQ(header_start(compact), net::compact::marker);
  const auto older = result_from_scripted_node("", asked);
  EXPECT_EQ(header_start(older), '{') << "a node that does not answer the ask gets JSON";
  const auto json_node = result_from_scripted_node("json", asked);
  EXPECT_EQ(header_start(json_node), '{');
  // Either way the result is the task's, body as returned.
  for (const auto* m : {&compact, &older, &json_node}) {
    net::frame_record r;
    const auto step = net::read_record(*m, 0, r);
    ASSERT_FALSE(step.fault) << step.fault.message;
    EXPECT_EQ(r.header.string("type"), "result");
    EXPECT_EQ(r.header.uint("task"), 5u);
    EXPECT_EQ(r.header.uint("lease"), 9u);
    EXPECT_EQ(m->substr(r.body_offset, r.body_size), "payload");
  }
}

TEST(runtime_client_headers, with_batch_the_results_of_a_burst_share_one_message_in_order) {
  std::string asked;
  for (const auto* headers : {"compact", "json"}) {
    const auto message = result_from_scripted_node(headers, asked, true, 3);
    std::vector<std::uint64_t> leases;
    std::optional<std::uint64_t> demand;
    const auto fault = net::for_each_record(message, [&](const net::frame_record& r) {
      if (r.header.string("type") == "demand") {
        demand = r.header.uint("n");
        return;
      }
      EXPECT_FALSE(demand) << "demand closes the message of the results that freed it";
      EXPECT_EQ(r.header.string("type"), "result");
      EXPECT_EQ(r.header.uint("task"), r.header.uint("lease").value_or(0) - 4);
      EXPECT_EQ(message.substr(r.body_offset, r.body_size), "payload");
      leases.push_back(r.header.uint("lease").value_or(0));
    });
    ASSERT_FALSE(fault) << fault.message;
    EXPECT_EQ(leases, (std::vector<std::uint64_t>{9, 10, 11})) << headers;
    EXPECT_EQ(demand, std::optional<std::uint64_t>(3)) << "the three freed slots asked for with the results, " << headers;
  }
}
