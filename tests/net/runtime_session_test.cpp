// The WebSocket runtime protocol (/v1/runtime) on loopback sockets.
#include <gtest/gtest.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <future>

#include <set>

#include "record_writer.hpp"
#include "support/gateway_fixture.hpp"
#include "support/tcp_proxy.hpp"
#include "support/ws_client.hpp"

using namespace drover;
using namespace drover::test_support;
namespace websocket = boost::beast::websocket;
using namespace std::chrono_literals;

namespace {

/// A minimal runtime client written from docs/protocol.md.
class ws_runtime : public ws_client {
 public:
  explicit ws_runtime(std::uint16_t port) : ws_client(port, "/v1/runtime") {}

  void hello(const std::string& queues_json, int capacity, const std::string& token = "") {
    send_text(R"({"type":"hello","runtime":"test","queues":)" + queues_json + R"(,"capacity":)" +
              std::to_string(capacity) + (token.empty() ? "" : R"(,"token":")" + token + "\"") + "}");
  }

  void result(const message& task, const std::string& value) {
    send_binary(frame(json::object{{"type", "result"}, {"task", task.header.at("task")},
                                   {"lease", task.header.at("lease")}, {"slot", task.header.at("slot")}},
                      value));
  }
};

class runtime_session_test : public gateway_fixture {
 protected:
  runtime_session_test() { gateway_config.body_bytes_max = 64 * 1024; }

  ws_runtime::message welcome(ws_runtime& rt, const std::string& queues = R"(["resize"])", int capacity = 4) {
    rt.hello(queues, capacity);
    auto m = rt.read();
    EXPECT_FALSE(m.error) << m.error.message();
    EXPECT_EQ(m.header.at("type").as_string(), "welcome");
    return m;
  }

  /// Welcomed with the defaults, a demand of one, and the task frame it brings.
  ws_runtime::message lease_one(ws_runtime& rt) {
    welcome(rt);
    rt.send_text(R"({"type":"demand","n":1})");
    return rt.read();
  }

  completion outcome(const task_handle& h) {
    auto c = h.wait_for(10s);
    EXPECT_TRUE(c);
    return c ? *c : completion(core::make_error(core::errc::timed_out, "no outcome"));
  }

};

}  // namespace

TEST_F(runtime_session_test, tasks_flow_as_binary_frames_no_faster_than_demand) {
  ws_runtime rt(port);
  welcome(rt);
  std::vector<task_handle> hs;
  for (int i = 0; i < 3; ++i) hs.push_back(*n->submit("resize", bytes::copy_from("img" + std::to_string(i))));
  rt.send_text(R"({"type":"demand","n":2})");
  auto a = rt.read(), b = rt.read();
  ASSERT_TRUE(a.binary && b.binary);
  EXPECT_EQ(a.header.at("queue").as_string(), "resize");
  EXPECT_EQ(a.payload, "img0") << "the payload arrives exactly as submitted";
  EXPECT_EQ(b.payload, "img1");
  rt.result(a, "thumb0");
  rt.result(b, "thumb1");
  EXPECT_EQ(outcome(hs[0])->value.view(), "thumb0");
  EXPECT_EQ(outcome(hs[1])->value.view(), "thumb1");
  EXPECT_FALSE(hs[2].done()) << "no demand was left for the third task";
  rt.send_text(R"({"type":"demand","n":1})");
  auto c = rt.read();
  EXPECT_EQ(c.payload, "img2");
  rt.send_text(json::serialize(json::object{{"type", "failure"}, {"task", c.header.at("task")},
                                            {"lease", c.header.at("lease")}, {"message", "corrupt image"},
                                            {"retryable", false}}));
  auto failed = outcome(hs[2]);
  EXPECT_EQ(failed->state, task_state::failed);
  EXPECT_EQ(failed->err.message, "corrupt image");
}

TEST_F(runtime_session_test, a_batch_runtime_gets_tasks_as_records_of_one_message_and_returns_results_so) {
  std::vector<task_handle> hs;
  for (int i = 0; i < 6; ++i) hs.push_back(*n->submit("resize", bytes::copy_from("img" + std::to_string(i))));
  ws_runtime rt(port);
  rt.send_text(R"({"type":"hello","runtime":"test","queues":["resize"],"capacity":8,"batch":true})");
  auto w = rt.read();
  ASSERT_EQ(w.header.at("type").as_string(), "welcome");
  EXPECT_TRUE(w.header.at("batch").as_bool());
  rt.send_text(R"({"type":"demand","n":6})");
  std::vector<ws_runtime::message> tasks;
  int messages = 0;
  while (tasks.size() < 6) {
    auto records = rt.read_records();
    ASSERT_TRUE(records.front().binary) << json::serialize(records.front().header);
    ++messages;
    for (auto& r : records) tasks.push_back(std::move(r));
  }
  EXPECT_LT(messages, 6) << "tasks leased together share messages";
  std::string results;
  for (const auto& t : tasks) {
    EXPECT_EQ(t.payload.substr(0, 3), "img") << "each body is bounded by its bytes";
    const std::string value = "thumb-" + t.payload;
    results += ws_runtime::frame(json::object{{"type", "result"}, {"task", t.header.at("task")}, {"lease", t.header.at("lease")},
                                              {"bytes", value.size()}},
                                 value);
  }
  rt.send_binary(results);  // six results, one message
  for (int i = 0; i < 6; ++i) EXPECT_EQ(outcome(hs[i])->value.view(), "thumb-img" + std::to_string(i));
}

TEST_F(runtime_session_test, demand_sent_as_a_record_after_the_results_that_freed_it_brings_more_tasks) {
  std::vector<task_handle> hs;
  for (int i = 0; i < 4; ++i) hs.push_back(*n->submit("resize", bytes::copy_from("img" + std::to_string(i))));
  ws_runtime rt(port);
  rt.send_text(R"({"type":"hello","runtime":"test","queues":["resize"],"capacity":2,"batch":true})");
  ASSERT_EQ(rt.read().header.at("type").as_string(), "welcome");
  rt.send_binary(ws_runtime::frame(json::object{{"type", "demand"}, {"n", 2}}, ""));  // a message of demand alone
  for (int round = 0; round < 2; ++round) {
    std::vector<ws_runtime::message> tasks;
    while (tasks.size() < 2) {
      auto records = rt.read_records();
      ASSERT_TRUE(records.front().binary) << json::serialize(records.front().header);
      for (auto& r : records) tasks.push_back(std::move(r));
    }
    std::string message;
    for (const auto& t : tasks)
      message += ws_runtime::frame(json::object{{"type", "result"}, {"task", t.header.at("task")},
                                                {"lease", t.header.at("lease")}, {"bytes", 2}},
                                   "ok");
    message += ws_runtime::frame(json::object{{"type", "demand"}, {"n", 2}}, "");
    rt.send_binary(message);  // two results and the demand they freed, one message
  }
  for (auto& h : hs) EXPECT_EQ(outcome(h)->value.view(), "ok");
}

TEST_F(runtime_session_test, bad_demand_records_get_the_errors_demand_frames_get) {
  ws_runtime rt(port);
  welcome(rt);  // capacity 4
  rt.send_binary(ws_runtime::frame(json::object{{"type", "demand"}, {"n", 0}}, ""));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "invalid_argument");
  rt.send_binary(ws_runtime::frame(json::object{{"type", "demand"}, {"n", "two"}}, ""));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "invalid_argument");
  rt.send_binary(ws_runtime::frame(json::object{{"type", "demand"}, {"n", 5}}, ""));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "over_capacity") << "capacity 4 was declared";
  rt.send_binary(ws_runtime::frame(json::object{{"type", "teleport"}}, ""));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "unknown_type");
  rt.send_text(R"({"type":"heartbeat"})");
  EXPECT_EQ(rt.read().header.at("type").as_string(), "heartbeat") << "still served";
}

TEST_F(runtime_session_test, a_compact_runtime_gets_compact_task_records_and_may_answer_in_either_form) {
  std::vector<task_handle> hs;
  for (int i = 0; i < 2; ++i) hs.push_back(*n->submit("resize", bytes::copy_from("img" + std::to_string(i))));
  ws_runtime rt(port);
  rt.send_text(R"({"type":"hello","runtime":"test","queues":["resize"],"capacity":8,"batch":true,"headers":"compact"})");
  auto w = rt.read();
  ASSERT_EQ(w.header.at("type").as_string(), "welcome");
  EXPECT_EQ(w.header.at("headers").as_string(), "compact");
  rt.send_text(R"({"type":"demand","n":2})");
  std::vector<ws_runtime::message> tasks;
  while (tasks.size() < 2)
    for (auto& r : rt.read_records()) tasks.push_back(std::move(r));
  for (const auto& t : tasks) {
    EXPECT_TRUE(t.compact);
    EXPECT_EQ(t.header.at("queue").as_string(), "resize");
    EXPECT_EQ(t.header.at("attempt").to_number<int>(), 1);
    EXPECT_TRUE(t.header.at("meta").as_object().empty());
    EXPECT_GT(t.header.at("deadline_ms").to_number<std::int64_t>(), 0);
    EXPECT_TRUE(t.header.contains("slot"));
  }
  // The fields two tasks share are written once for both; their own differ.
  EXPECT_NE(tasks[0].header.at("task"), tasks[1].header.at("task"));
  EXPECT_NE(tasks[0].header.at("lease"), tasks[1].header.at("lease"));
  // One result in the compact form, one in JSON, in one message.
  std::string results;
  net::record_writer compact(results, net::header_format::compact);
  compact.field("type", "result").field("task", tasks[0].header.at("task").to_number<std::uint64_t>());
  compact.field("lease", tasks[0].header.at("lease").to_number<std::uint64_t>());
  compact.end(2);
  results += "r0";
  results += ws_runtime::frame(json::object{{"type", "result"}, {"task", tasks[1].header.at("task")},
                                            {"lease", tasks[1].header.at("lease")}, {"bytes", 2}},
                               "r1");
  rt.send_binary(results);
  std::set<std::string> values;
  for (auto& h : hs) values.insert(outcome(h)->value.to_string());
  EXPECT_EQ(values, (std::set<std::string>{"r0", "r1"}));
}

TEST_F(runtime_session_test, a_malformed_compact_record_is_refused_as_bad_json_after_those_before_it) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  ws_runtime rt(port);
  auto task = lease_one(rt);
  ASSERT_TRUE(task.binary);
  std::string message;
  net::record_writer good(message, net::header_format::compact);
  good.field("type", "result").field("task", task.header.at("task").to_number<std::uint64_t>());
  good.field("lease", task.header.at("lease").to_number<std::uint64_t>());
  good.end(4);
  message += "done";
  const std::string broken = "\xc1\x02\x01\x80";  // task: a varint cut short
  message += std::string{0, 0, 0, static_cast<char>(broken.size())} + broken;
  rt.send_binary(message);
  EXPECT_EQ(rt.read().header.at("code").as_string(), "bad_json");
  EXPECT_EQ(outcome(h)->value.view(), "done") << "the record before the broken one was taken";
  rt.send_text(R"({"type":"heartbeat"})");
  EXPECT_EQ(rt.read().header.at("type").as_string(), "heartbeat") << "the session goes on";
}

TEST_F(runtime_session_test, a_result_sent_twice_is_refused_the_second_time_and_the_first_counts) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  ws_runtime rt(port);
  auto task = lease_one(rt);
  ASSERT_TRUE(task.binary);
  rt.result(task, "first");
  rt.result(task, "second");
  const auto refused = rt.read();
  EXPECT_EQ(refused.header.at("code").as_string(), "stale_lease");
  EXPECT_EQ(refused.header.at("lease"), task.header.at("lease"));
  EXPECT_EQ(outcome(h)->value.view(), "first");
  const auto sessions = call(port, http::verb::get, "/v1/runtimes").json().at("sessions");
  EXPECT_EQ(sessions.at("refused_reports").to_number<int>(), 1) << json::serialize(sessions);
}

TEST_F(runtime_session_test, a_hello_asking_for_unknown_headers_is_refused_with_1007) {
  ws_runtime rt(port);
  rt.send_text(R"({"type":"hello","queues":["resize"],"capacity":1,"headers":"xml"})");
  EXPECT_EQ(rt.read().header.at("code").as_string(), "invalid_argument");
  EXPECT_TRUE(rt.read().error);
  EXPECT_EQ(rt.reason().code, websocket::close_code::bad_payload);
}

TEST_F(runtime_session_test, a_record_running_past_its_message_is_refused_after_those_before_it) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  ws_runtime rt(port);
  auto task = lease_one(rt);
  ASSERT_TRUE(task.binary);
  const auto good = ws_runtime::frame(json::object{{"type", "result"}, {"task", task.header.at("task")},
                                                   {"lease", task.header.at("lease")}, {"bytes", 4}},
                                      "done");
  const auto broken = ws_runtime::frame(json::object{{"type", "result"}, {"task", 1}, {"lease", 1}, {"bytes", 99}}, "x");
  rt.send_binary(good + broken);
  EXPECT_EQ(rt.read().header.at("code").as_string(), "bad_frame");
  EXPECT_EQ(outcome(h)->value.view(), "done") << "the record before the broken one was taken";
}

TEST_F(runtime_session_test, a_runtime_that_disconnects_mid_task_loses_it_to_another) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  {
    ws_runtime first(port);
    welcome(first);
    first.send_text(R"({"type":"demand","n":1})");
    auto task = first.read();
    ASSERT_TRUE(task.binary);
    first.close();  // goes away without a result
  }
  ws_runtime second(port);
  welcome(second);
  second.send_text(R"({"type":"demand","n":1})");
  auto task = second.read();
  ASSERT_TRUE(task.binary);
  EXPECT_EQ(task.header.at("attempt").to_number<int>(), 2);
  second.result(task, "done");
  EXPECT_EQ(outcome(h)->value.view(), "done");
  const auto queues = call(port, http::verb::get, "/v1/queues").json();
  for (const auto& q : queues.at("queues").as_array()) {
    if (q.at("name") != "resize") continue;
    EXPECT_EQ(q.at("retried").to_number<int>(), 1) << json::serialize(q);
  }
}

TEST_F(runtime_session_test, bad_messages_get_precise_errors_and_the_session_continues) {
  ws_runtime rt(port);
  welcome(rt);
  rt.send_text("{not json");
  EXPECT_EQ(rt.read().header.at("code").as_string(), "bad_json");
  rt.send_text(R"({"type":"teleport"})");
  EXPECT_EQ(rt.read().header.at("code").as_string(), "unknown_type");
  rt.send_text(R"({"type":"demand","n":5})");
  EXPECT_EQ(rt.read().header.at("code").as_string(), "over_capacity") << "capacity 4 was declared";
  rt.send_binary(std::string("\x00\x00", 2));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "bad_frame");
  rt.send_binary(std::string("\x00\x00\x10\x00{}", 6));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "bad_frame") << "header length beyond the frame";
  rt.send_binary(ws_runtime::frame(json::object{{"type", "result"}, {"task", 99}, {"lease", 12345}}, "x"));
  EXPECT_EQ(rt.read().header.at("code").as_string(), "stale_lease") << "a lease this runtime does not hold";
  rt.send_text(R"({"type":"heartbeat"})");
  EXPECT_EQ(rt.read().header.at("type").as_string(), "heartbeat") << "still served";
}

TEST_F(runtime_session_test, an_oversized_frame_closes_with_1009) {
  ws_runtime rt(port);
  welcome(rt);
  rt.send_binary(std::string(200 * 1024, 'x'));
  auto m = rt.read();
  EXPECT_TRUE(m.error);
  EXPECT_EQ(rt.reason().code, websocket::close_code::too_big);
}

TEST_F(runtime_session_test, a_bad_hello_is_refused_with_a_close_code) {
  ws_runtime rt(port);
  rt.send_text(R"({"type":"demand","n":1})");
  auto m = rt.read();
  EXPECT_EQ(m.header.at("code").as_string(), "expected_hello");
  EXPECT_TRUE(rt.read().error);
  EXPECT_EQ(rt.reason().code, websocket::close_code::protocol_error);
}

class runtime_session_auth_test : public runtime_session_test {
 protected:
  runtime_session_auth_test() { gateway_config.tokens = {"s3cret"}; }
};

TEST_F(runtime_session_auth_test, a_wrong_token_is_closed_with_1008) {
  ws_runtime rt(port);
  rt.hello(R"(["resize"])", 1, "wrong");
  EXPECT_EQ(rt.read().header.at("code").as_string(), "unauthorized");
  EXPECT_TRUE(rt.read().error);
  EXPECT_EQ(rt.reason().code, websocket::close_code::policy_error);
  ws_runtime good(port);
  good.hello(R"(["resize"])", 1, "s3cret");
  EXPECT_EQ(good.read().header.at("type").as_string(), "welcome");
}

class runtime_session_silence_test : public runtime_session_test {
 protected:
  // A ping after 50 ms of silence; dropped after 100 ms without an answer.
  runtime_session_silence_test() { gateway_config.heartbeat_interval = 50ms; }
};

TEST_F(runtime_session_silence_test, a_runtime_gone_silent_is_dropped_and_its_task_goes_to_another) {
  auto h = *n->submit("resize", bytes::copy_from("img"));
  tcp_proxy proxy(port);
  ws_runtime silent(proxy.port());
  welcome(silent);
  silent.send_text(R"({"type":"demand","n":1})");
  const auto leased = silent.read();
  ASSERT_TRUE(leased.binary) << json::serialize(leased.header);
  proxy.set_frozen(true);  // nothing gets through either way, and nothing says so
  const auto frozen_at = std::chrono::steady_clock::now();
  ws_runtime other(port);
  welcome(other);
  other.send_text(R"({"type":"demand","n":1})");
  const auto again = other.read();  // the node answers the other's pings meanwhile
  ASSERT_TRUE(again.binary) << json::serialize(again.header);
  EXPECT_EQ(again.header.at("task"), leased.header.at("task")) << "released when the silent runtime was dropped";
  const auto silent_for = std::chrono::steady_clock::now() - frozen_at;
  EXPECT_GE(silent_for, 50ms) << "not before a ping went unanswered";
  EXPECT_LT(silent_for, 1500ms) << "dropped after about twice the heartbeat interval (100 ms)";
  other.result(again, "done");
  EXPECT_EQ(outcome(h)->value.view(), "done");
}
