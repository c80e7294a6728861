// The HTTP gateway on real loopback sockets with ephemeral ports.
#include "drover/net/gateway.hpp"

#include "support/http_client.hpp"

#include <gtest/gtest.h>

using namespace drover;
using namespace drover::test_support;

namespace {

// Each test runs twice: with the node's actors on CAF's scheduler threads
// (an embedding service's gateway) and on the gateway's I/O thread (`drover
// serve`), where nothing may block that thread waiting for the broker.
class gateway_test : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    node_config c;
    c.work_limit = 8;
    c.seed = 1;
    c.hostable_actors = GetParam();
    n = node::start(c);
    ASSERT_TRUE(n->handle("echo", [](task_context& ctx) -> asio::awaitable<task_result> {
      co_return task_result::success(ctx.payload());
    }));
    ASSERT_TRUE(n->declare_queue("parked"));
    start_gateway({});
  }

  void start_gateway(std::vector<std::string> tokens) {
    if (gw) gw->stop();
    net::gateway_config g;
    g.port = 0;
    g.body_bytes_max = 1024;
    g.tokens = std::move(tokens);
    auto started = net::gateway::start(*n, g);
    ASSERT_TRUE(started) << started.err().message;
    gw = std::move(*started);
    port = gw->port();
  }

  void TearDown() override {
    if (gw) gw->stop();
    n->stop();
  }

  std::unique_ptr<node> n;
  std::unique_ptr<net::gateway> gw;
  std::uint16_t port = 0;
};

}  // namespace

INSTANTIATE_TEST_SUITE_P(actor_threads, gateway_test, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "on_gateway_thread" : "on_caf_threads"; });

TEST_P(gateway_test, submit_then_long_poll_then_read_the_result) {
  auto submitted = call(port, http::verb::post, "/v1/queues/echo/tasks?priority=3", "hello bytes");
  ASSERT_EQ(submitted.status, 202u) << submitted.body;
  const auto id = submitted.json().at("id").to_number<std::uint64_t>();
  auto status = call(port, http::verb::get, "/v1/tasks/" + std::to_string(id) + "?wait_ms=10000");
  ASSERT_EQ(status.status, 200u);
  EXPECT_EQ(status.json().at("state").as_string(), "succeeded") << status.body;
  EXPECT_EQ(status.json().at("done").as_bool(), true);
  auto result = call(port, http::verb::get, "/v1/tasks/" + std::to_string(id) + "/result");
  EXPECT_EQ(result.status, 200u);
  EXPECT_EQ(result.body, "hello bytes") << "the payload travelled as opaque bytes";
}

TEST_P(gateway_test, unknown_queue_is_404_with_its_name) {
  auto r = call(port, http::verb::post, "/v1/queues/nobody/tasks", "x");
  EXPECT_EQ(r.status, 404u);
  EXPECT_EQ(r.json().at("error").as_string(), "unknown_queue");
  EXPECT_NE(r.body.find("nobody"), std::string::npos);
}

TEST_P(gateway_test, bad_options_are_400_and_name_the_parameter) {
  auto r = call(port, http::verb::post, "/v1/queues/echo/tasks?priority=300", "x");
  EXPECT_EQ(r.status, 400u);
  EXPECT_NE(r.body.find("priority"), std::string::npos);
  EXPECT_EQ(call(port, http::verb::post, "/v1/queues/echo/tasks?max_attempts=abc", "x").status, 400u);
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/notanumber").status, 400u);
  EXPECT_EQ(call(port, http::verb::get, "/v1/queues/%zz").status, 400u) << "malformed percent escape";
}

TEST_P(gateway_test, oversized_body_is_413_and_others_are_still_served) {
  auto big = call(port, http::verb::post, "/v1/queues/echo/tasks", std::string(4096, 'x'));
  EXPECT_EQ(big.status, 413u);
  auto fine = call(port, http::verb::post, "/v1/queues/echo/tasks", "small");
  EXPECT_EQ(fine.status, 202u);
}

TEST_P(gateway_test, unknown_route_is_404_and_wrong_method_is_405_with_allow) {
  EXPECT_EQ(call(port, http::verb::get, "/v2/nothing").status, 404u);
  auto r = call(port, http::verb::get, "/v1/queues/echo/tasks");
  EXPECT_EQ(r.status, 405u);
  EXPECT_EQ(r.allow, "POST");
}

TEST_P(gateway_test, garbage_bytes_get_400_and_the_gateway_keeps_serving) {
  const auto answer = send_raw(port, "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_NE(answer.find("400"), std::string::npos) << answer;
  EXPECT_EQ(call(port, http::verb::get, "/v1/queues").status, 200u);
}

TEST_P(gateway_test, tokens_are_required_when_configured) {
  start_gateway({"s3cret"});
  auto missing = call(port, http::verb::get, "/v1/queues");
  EXPECT_EQ(missing.status, 401u);
  auto wrong = call(port, http::verb::get, "/v1/queues", {}, {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.status, 401u);
  auto right = call(port, http::verb::get, "/v1/queues", {}, {{"Authorization", "Bearer s3cret"}});
  EXPECT_EQ(right.status, 200u);
}

TEST_P(gateway_test, queues_list_their_depth) {
  ASSERT_EQ(call(port, http::verb::post, "/v1/queues/parked/tasks", "a").status, 202u);
  ASSERT_EQ(call(port, http::verb::post, "/v1/queues/parked/tasks", "b").status, 202u);
  auto r = call(port, http::verb::get, "/v1/queues");
  ASSERT_EQ(r.status, 200u);
  bool found = false;
  const auto doc = r.json();
  for (const auto& q : doc.at("queues").as_array()) {
    if (q.at("name").as_string() != "parked") continue;
    found = true;
    EXPECT_EQ(q.at("ready").to_number<std::uint64_t>(), 2u) << r.body;
    EXPECT_EQ(q.at("submitted").to_number<std::uint64_t>(), 2u) << r.body;
  }
  EXPECT_TRUE(found);
}

TEST_P(gateway_test, delete_cancels_a_queued_task) {
  auto submitted = call(port, http::verb::post, "/v1/queues/parked/tasks", "never");
  const auto id = std::to_string(submitted.json().at("id").to_number<std::uint64_t>());
  EXPECT_EQ(call(port, http::verb::delete_, "/v1/tasks/" + id).status, 202u);
  auto status = call(port, http::verb::get, "/v1/tasks/" + id + "?wait_ms=10000");
  EXPECT_EQ(status.json().at("state").as_string(), "cancelled") << status.body;
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + id + "/result").status, 409u);
}

TEST_P(gateway_test, unknown_task_is_404) {
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/999999").status, 404u);
  EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/999999/result").status, 404u);
}

TEST_P(gateway_test, a_batch_is_submitted_all_at_once_and_each_task_is_readable) {
  auto submitted = call(port, http::verb::post, "/v1/queues/echo/batch?priority=2",
                        R"({"tasks":[{"payload":"one"},{"payload_base64":"dHdv"}]})");
  ASSERT_EQ(submitted.status, 202u) << submitted.body;
  const auto ids = submitted.json().at("ids").as_array();
  ASSERT_EQ(ids.size(), 2u);
  const char* expected[] = {"one", "two"};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto id = std::to_string(ids[i].to_number<std::uint64_t>());
    EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + id + "?wait_ms=5000").json().at("state").as_string(), "succeeded");
    EXPECT_EQ(call(port, http::verb::get, "/v1/tasks/" + id + "/result").body, expected[i]);
  }
}

TEST_P(gateway_test, a_bad_batch_is_refused_whole_with_the_offending_task_named) {
  auto bad = call(port, http::verb::post, "/v1/queues/echo/batch", R"({"tasks":[{"payload":"ok"},{"payload_base64":"%%%"}]})");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("task 1"), std::string::npos) << bad.body;
  EXPECT_EQ(call(port, http::verb::post, "/v1/queues/echo/batch", "[1,2]").status, 400u);
  EXPECT_EQ(call(port, http::verb::post, "/v1/queues/nowhere/batch", R"({"tasks":[{"payload":"x"}]})").status, 404u);
  EXPECT_EQ(n->stats().live_tasks, 0u) << "nothing of a refused batch was accepted";
}
