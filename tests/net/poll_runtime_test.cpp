// Long-poll runtimes (POST /v1/runtime/claim, /v1/runtime/results) on loopback.
#include <gtest/gtest.h>

#include <future>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "support/gateway_fixture.hpp"

using namespace drover;
using namespace drover::test_support;
using namespace std::chrono_literals;

namespace {

class poll_runtime_test : public gateway_fixture {
 protected:
  poll_runtime_test() { gateway_config.poll_session_idle = 300ms; }
  http_reply claim(const json::object& body) { return post_json("/v1/runtime/claim", body); }
  http_reply results(const json::object& body) { return post_json("/v1/runtime/results", body); }
};

}  // namespace

TEST_F(poll_runtime_test, a_waiting_claim_returns_as_soon_as_a_task_arrives) {
  auto waiting = std::async(std::launch::async, [&] {
    return claim(json::object{{"queues", json::array{"resize"}}, {"max", 4}, {"wait_ms", 10000}});
  });
  std::this_thread::sleep_for(50ms);
  auto h = *n->submit("resize", bytes::copy_from("img-1"));
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  auto r = waiting.get();
  ASSERT_EQ(r.status, 200u) << r.body;
  auto doc = r.json().as_object();
  const auto& tasks = doc.at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 1u);
  const auto& t = tasks[0].as_object();
  EXPECT_EQ(t.at("payload_base64").as_string(), b64("img-1"));
  auto reported = results(json::object{
      {"session", doc.at("session")},
      {"results", json::array{json::object{{"task", t.at("task")}, {"lease", t.at("lease")}, {"slot", t.at("slot")},
                                           {"ok", true}, {"value_base64", b64("thumb-1")}}}}});
  EXPECT_EQ(reported.status, 202u) << reported.body;
  auto c = h.wait_for(10s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->value.view(), "thumb-1");
}

TEST_F(poll_runtime_test, a_cancelled_task_wakes_the_waiting_claim_with_its_cancel) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  ASSERT_EQ(first.status, 200u) << first.body;
  const auto doc = first.json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u);
  const auto& t = doc.at("tasks").as_array()[0].as_object();
  EXPECT_TRUE(doc.at("cancels").as_array().empty());
  auto waiting = std::async(std::launch::async, [&] {
    return claim(json::object{{"session", doc.at("session")}, {"max", 1}, {"wait_ms", 10000}});
  });
  std::this_thread::sleep_for(50ms);
  h.cancel();
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready) << "the cancel ends the wait";
  auto second = waiting.get();
  ASSERT_EQ(second.status, 200u) << second.body;
  const auto cancels = second.json().at("cancels").as_array();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].at("task"), t.at("task"));
  EXPECT_EQ(cancels[0].at("lease"), t.at("lease"));
  auto third = claim(json::object{{"session", doc.at("session")}, {"max", 1}});
  EXPECT_TRUE(third.json().at("cancels").as_array().empty()) << "told once";
}

TEST_F(poll_runtime_test, a_results_answer_carries_the_cancels_of_other_leases) {
  auto a = *n->submit("resize", bytes::copy_from("a"));
  auto b = *n->submit("resize", bytes::copy_from("b"));
  auto got = claim(json::object{{"queues", json::array{"resize"}}, {"max", 2}, {"wait_ms", 5000}});
  auto doc = got.json().as_object();
  while (doc.at("tasks").as_array().size() < 2) {  // the second task may come with a later claim
    auto more = claim(json::object{{"session", doc.at("session")}, {"max", 1}, {"wait_ms", 5000}}).json().as_object();
    ASSERT_FALSE(more.at("tasks").as_array().empty());
    doc.at("tasks").as_array().push_back(more.at("tasks").as_array()[0]);
  }
  const auto& tasks = doc.at("tasks").as_array();
  const auto& first = tasks[0].as_object();
  const auto& second = tasks[1].as_object();
  (first.at("task").to_number<std::uint64_t>() == a.id().value ? b : a).cancel();
  ASSERT_TRUE((first.at("task").to_number<std::uint64_t>() == a.id().value ? b : a).wait_for(5s));
  auto reported = results(json::object{
      {"session", doc.at("session")},
      {"results", json::array{json::object{{"task", first.at("task")}, {"lease", first.at("lease")}, {"ok", true}}}}});
  ASSERT_EQ(reported.status, 202u) << reported.body;
  // The revoke reaches the session on the I/O thread, maybe after this
  // answer: later (empty) results answers carry it then.
  auto cancels = reported.json().at("cancels").as_array();
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (cancels.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(2ms);
    cancels = results(json::object{{"session", doc.at("session")}, {"results", json::array{}}}).json().at("cancels").as_array();
  }
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].at("lease"), second.at("lease"));
}

TEST_F(poll_runtime_test, progress_and_log_notes_reach_the_task_status_and_bad_ones_are_listed) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto doc = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}}).json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u);
  const auto& t = doc.at("tasks").as_array()[0].as_object();
  auto note = [&](json::object o) {
    o["task"] = t.at("task");
    if (!o.contains("lease")) o["lease"] = t.at("lease");
    return o;
  };
  auto answer = post_json("/v1/runtime/notes",
                          json::object{{"session", doc.at("session")},
                                       {"notes", json::array{note({{"type", "progress"}, {"fraction", 0.25}, {"note", "a quarter"}}),
                                                             note({{"type", "log"}, {"line", "decoded 640x480"}}),
                                                             note({{"type", "progress"}, {"fraction", 2}}),
                                                             note({{"type", "log"}, {"line", "x"}, {"lease", 999999}}),
                                                             note({{"type", "shout"}}), 42}}});
  ASSERT_EQ(answer.status, 202u) << answer.body;
  const auto a = answer.json().as_object();
  EXPECT_EQ(a.at("accepted").to_number<int>(), 2);
  const auto& errors = a.at("errors").as_array();
  ASSERT_EQ(errors.size(), 4u) << answer.body;
  EXPECT_EQ(errors[0].at("index").to_number<int>(), 2);
  EXPECT_EQ(errors[0].at("code").as_string(), "invalid_argument");
  EXPECT_EQ(errors[1].at("code").as_string(), "stale_lease");
  EXPECT_EQ(errors[2].at("code").as_string(), "unknown_type");
  EXPECT_EQ(errors[3].at("code").as_string(), "invalid_argument");
  auto status = call(port, http::verb::get, "/v1/tasks/" + std::to_string(h.id().value)).json().as_object();
  EXPECT_EQ(status.at("progress").at("fraction").as_double(), 0.25);
  EXPECT_EQ(status.at("progress").at("note").as_string(), "a quarter");
  EXPECT_EQ(status.at("logs").as_array().at(0).as_string(), "decoded 640x480");
  EXPECT_EQ(post_json("/v1/runtime/notes", json::object{{"session", 424242}, {"notes", json::array{}}}).status, 404u);
  EXPECT_EQ(post_json("/v1/runtime/notes", json::object{{"session", doc.at("session")}}).status, 400u);
}

TEST_F(poll_runtime_test, an_empty_claim_waits_its_time_and_returns_nothing) {
  const auto start = std::chrono::steady_clock::now();
  auto r = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 100}});
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  ASSERT_EQ(r.status, 200u);
  EXPECT_TRUE(r.json().at("tasks").as_array().empty());
}

TEST_F(poll_runtime_test, bad_requests_are_400_and_unknown_sessions_404) {
  EXPECT_EQ(call(port, http::verb::post, "/v1/runtime/claim", "{oops").status, 400u);
  EXPECT_EQ(claim(json::object{{"queues", json::array{"resize"}}, {"max", 0}}).status, 400u);
  EXPECT_EQ(claim(json::object{{"max", 1}}).status, 400u) << "a new session needs queues";
  EXPECT_EQ(claim(json::object{{"session", 424242}}).status, 404u);
  EXPECT_EQ(results(json::object{{"session", 424242}, {"results", json::array{}}}).status, 404u);
  EXPECT_EQ(call(port, http::verb::get, "/v1/runtime/claim").status, 405u);
  auto session = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}}).json().at("session");
  auto bad_b64 = results(json::object{
      {"session", session},
      {"results", json::array{json::object{{"task", 1}, {"lease", 1}, {"ok", true}, {"value_base64", "!!!!"}}}}});
  EXPECT_EQ(bad_b64.status, 400u);
  EXPECT_NE(bad_b64.body.find("base64"), std::string::npos);
}

TEST_F(poll_runtime_test, an_idle_session_expires_and_its_leases_go_to_another_runtime) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  ASSERT_EQ(first.json().at("tasks").as_array().size(), 1u);
  // The first runtime vanishes without reporting; after the idle timeout
  // (300 ms here) its session ends and the task is requeued.
  auto second = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  auto doc = second.json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u) << second.body;
  const auto& t = doc.at("tasks").as_array()[0].as_object();
  EXPECT_EQ(t.at("attempt").to_number<int>(), 2);
  EXPECT_EQ(results(json::object{{"session", doc.at("session")},
                                 {"results", json::array{json::object{{"task", t.at("task")}, {"lease", t.at("lease")},
                                                                      {"ok", true}}}}})
                .status,
            202u);
  auto c = h.wait_for(10s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->state, task_state::succeeded);
}

namespace {

/// Sessions that never go idle in a test's time: only a leave ends them.
class poll_leave_test : public poll_runtime_test {
 protected:
  poll_leave_test() { gateway_config.poll_session_idle = 60s; }
};

}  // namespace

TEST_F(poll_leave_test, a_session_that_leaves_gives_its_tasks_back_at_once_and_ends_its_waiting_claim) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 2}, {"wait_ms", 5000}});
  const auto doc = first.json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u) << first.body;
  const auto session = doc.at("session");
  auto waiting = std::async(std::launch::async, [&] {
    return claim(json::object{{"session", session}, {"max", 1}, {"wait_ms", 20000}});
  });
  std::this_thread::sleep_for(50ms);
  auto left = post_json("/v1/runtime/leave", json::object{{"session", session}});
  EXPECT_EQ(left.status, 202u) << left.body;
  ASSERT_EQ(waiting.wait_for(5s), std::future_status::ready) << "the leave ends the waiting claim";
  EXPECT_EQ(waiting.get().status, 404u);
  // The task is back in the queue at once, long before the 60 s idle timeout.
  auto second = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  const auto again = second.json().as_object();
  ASSERT_EQ(again.at("tasks").as_array().size(), 1u) << second.body;
  EXPECT_EQ(again.at("tasks").as_array()[0].at("attempt").to_number<int>(), 2);
  EXPECT_EQ(post_json("/v1/runtime/leave", json::object{{"session", session}}).status, 404u) << "left already";
  EXPECT_EQ(post_json("/v1/runtime/leave", json::object{}).status, 400u);
  const auto& t = doc.at("tasks").as_array()[0].as_object();
  EXPECT_EQ(results(json::object{{"session", session},
                                 {"results", json::array{json::object{{"task", t.at("task")}, {"lease", t.at("lease")},
                                                                      {"ok", true}}}}})
                .status,
            404u)
      << "a result after leaving is refused";
  EXPECT_FALSE(h.done());
}

TEST_F(poll_runtime_test, a_claim_whose_runtime_hangs_up_stops_waiting_so_that_the_session_can_end) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  const auto doc = first.json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u) << first.body;
  {
    // The runtime waits for more, then dies: its connection closes under the claim.
    basio::io_context io;
    tcp::socket socket(io);
    socket.connect({basio::ip::make_address("127.0.0.1"), port});
    const auto body = json::serialize(json::object{{"session", doc.at("session")}, {"max", 1}, {"wait_ms", 20000}});
    basio::write(socket, basio::buffer("POST /v1/runtime/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body));
    std::this_thread::sleep_for(50ms);
  }
  // The dead claim no longer keeps the session: it ends after its idle time
  // (300 ms here), not after the claim's 20 s, and its task goes to another.
  auto second = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  const auto again = second.json().as_object();
  ASSERT_EQ(again.at("tasks").as_array().size(), 1u) << second.body;
  EXPECT_EQ(again.at("tasks").as_array()[0].at("attempt").to_number<int>(), 2);
  EXPECT_FALSE(h.done());
}

TEST_F(poll_runtime_test, an_older_claim_that_times_out_leaves_the_newer_one_of_its_session_waiting_for_tasks) {
  auto opened = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 0}});
  const auto session = opened.json().at("session");
  auto older = std::async(std::launch::async, [&] {
    return claim(json::object{{"session", session}, {"max", 1}, {"wait_ms", 100}});
  });
  std::this_thread::sleep_for(30ms);
  auto newer = std::async(std::launch::async, [&] {
    return claim(json::object{{"session", session}, {"max", 1}, {"wait_ms", 10000}});
  });
  ASSERT_EQ(older.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(older.get().json().at("tasks").as_array().size(), 0u);
  auto h = *n->submit("resize", bytes::copy_from("img"));
  ASSERT_EQ(newer.wait_for(3s), std::future_status::ready) << "the task must wake the claim still waiting";
  EXPECT_EQ(newer.get().json().at("tasks").as_array().size(), 1u);
}

TEST_F(poll_runtime_test, a_long_poll_session_is_listed_with_its_runtimes_demand_and_leases) {
  auto h1 = *n->submit("resize", bytes::copy_from("a"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"runtime", "poller-1"}, {"max", 1}, {"wait_ms", 5000}});
  ASSERT_EQ(first.status, 200u) << first.body;
  const auto session = first.json().at("session");
  ASSERT_EQ(first.json().at("tasks").as_array().size(), 1u);
  // A claim for 3 while one is held: demand for 2 more is signalled, none arrives.
  auto waiting = std::async(std::launch::async, [&] {
    return claim(json::object{{"session", session}, {"max", 3}, {"wait_ms", 10000}});
  });
  json::object listed;
  ASSERT_TRUE(eventually([&] {
    listed = listed_runtime("long-poll", session);
    return !listed.empty() && listed.at("connected").as_bool();
  }, 2s)) << "the session with its claim waiting is listed";
  EXPECT_EQ(listed.at("name").as_string(), "poller-1");
  EXPECT_EQ(listed.at("queues"), (json::array{"resize"}));
  EXPECT_TRUE(listed.at("capacity").is_null()) << "a long-poll session is bounded by its claims";
  EXPECT_EQ(listed.at("demand").to_number<std::uint64_t>(), 3u) << "the first claim's 1, filled, then 3 more asked";
  EXPECT_EQ(listed.at("in_flight").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(listed.at("waiting").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(listed.at("idle_ms").to_number<std::int64_t>(), 0) << "a session with a claim waiting is not idle";
  auto h2 = *n->submit("resize", bytes::copy_from("b"));
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(waiting.get().json().at("tasks").as_array().size(), 1u);
}

TEST_F(poll_runtime_test, a_claim_whose_connection_closed_with_its_request_leaves_its_tasks_for_the_next_claim) {
  // The first claim asks for two and answers at once; the two tasks arrive after it.
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 2}, {"wait_ms", 0}});
  const auto session = first.json().at("session");
  auto b = *n->submit("resize", bytes::copy_from("b"));
  auto c = *n->submit("resize", bytes::copy_from("c"));
  json::object listed;
  ASSERT_TRUE(eventually([&] {
    listed = listed_runtime("long-poll", session);
    return !listed.empty() && listed.at("waiting").to_number<std::uint64_t>() == 2;
  })) << "both tasks wait in the session for a claim: " << json::serialize(listed);
  {
    // A claim sent with the connection's end: corked, the request and the
    // FIN leave in one segment, so the node reads them together.
    basio::io_context io;
    tcp::socket socket(io);
    socket.connect({basio::ip::make_address("127.0.0.1"), port});
    const int on = 1;
    ASSERT_EQ(setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_CORK, &on, sizeof on), 0);
    const auto body = json::serialize(json::object{{"session", session}, {"max", 2}, {"wait_ms", 0}});
    basio::write(socket, basio::buffer("POST /v1/runtime/claim HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " +
                                       std::to_string(body.size()) + "\r\n\r\n" + body));
  }
  std::this_thread::sleep_for(50ms);
  auto next = claim(json::object{{"session", session}, {"max", 2}, {"wait_ms", 2000}});
  ASSERT_EQ(next.status, 200u) << next.body;
  const auto tasks = next.json().at("tasks").as_array();
  ASSERT_EQ(tasks.size(), 2u) << "the closed connection's claim took none: " << next.body;
  EXPECT_EQ(tasks[0].at("attempt").to_number<int>(), 1);
  EXPECT_EQ(tasks[1].at("attempt").to_number<int>(), 1);
}

TEST_F(poll_runtime_test, a_results_list_refused_for_one_bad_result_leaves_every_lease_it_named_held) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  auto first = claim(json::object{{"queues", json::array{"resize"}}, {"max", 1}, {"wait_ms", 5000}});
  const auto doc = first.json().as_object();
  ASSERT_EQ(doc.at("tasks").as_array().size(), 1u) << first.body;
  const auto& t = doc.at("tasks").as_array()[0].as_object();
  const json::object good{{"task", t.at("task")}, {"lease", t.at("lease")}, {"slot", t.at("slot")},
                          {"ok", true}, {"value_base64", b64("thumb")}};
  auto refused = results(json::object{
      {"session", doc.at("session")}, {"results", json::array{good, json::object{{"task", 99}, {"lease", 99}}}}});
  EXPECT_EQ(refused.status, 400u) << refused.body;
  // The session still holds the good result's lease: its notes are taken,
  // and the corrected list completes the task.
  auto noted = post_json("/v1/runtime/notes",
                         json::object{{"session", doc.at("session")},
                                      {"notes", json::array{json::object{{"type", "log"}, {"task", t.at("task")},
                                                                         {"lease", t.at("lease")}, {"line", "again"}}}}});
  ASSERT_EQ(noted.status, 202u) << noted.body;
  EXPECT_EQ(noted.json().at("accepted").to_number<int>(), 1) << noted.body;
  auto posted = results(json::object{{"session", doc.at("session")}, {"results", json::array{good}}});
  EXPECT_EQ(posted.status, 202u) << posted.body;
  auto c = h.wait_for(10s);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->value.view(), "thumb");
}

TEST_F(poll_runtime_test, a_queue_lists_the_demand_its_runtimes_signalled_and_not_yet_filled) {
  auto waiting = std::async(std::launch::async, [&] {
    return claim(json::object{{"queues", json::array{"resize"}}, {"max", 3}, {"wait_ms", 10000}});
  });
  std::uint64_t demand = 0;
  auto demand_is = [&](std::uint64_t expected) {
    return eventually([&] {
      demand = listed_queue("resize").at("demand").to_number<std::uint64_t>();
      return demand == expected;
    });
  };
  EXPECT_TRUE(demand_is(3)) << demand;
  auto h = *n->submit("resize", bytes::copy_from("img"));
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(demand_is(2)) << "one of the three was filled, not " << demand;
}
