// The WebSocket client channel (/v1/client) on loopback sockets: submit and
// receive outcomes on one connection, channels with windows, ordered and
// unordered delivery, and precise errors for bad input.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include "support/gateway_fixture.hpp"
#include "record_writer.hpp"
#include "support/tcp_proxy.hpp"
#include "support/ws_client.hpp"

using namespace drover;
using namespace drover::test_support;
using namespace std::chrono_literals;

namespace {

class client_channel_test : public gateway_fixture {
 protected:
  void SetUp() override {
    gateway_fixture::SetUp();
    // "resize" sleeps as many milliseconds as its payload says, then echoes it.
    ASSERT_TRUE(n->handle("resize", [](task_context& t) -> ::asio::awaitable<task_result> {
      const int ms = std::stoi(t.payload().to_string());
      ::asio::steady_timer timer(co_await ::asio::this_coro::executor, std::chrono::milliseconds(ms));
      co_await timer.async_wait(::asio::use_awaitable);
      co_return task_result::success(t.payload());
    }));
  }

  static std::string submit(std::uint64_t channel, std::uint64_t ref, const std::string& queue, const std::string& payload) {
    return ws_client::frame(json::object{{"type", "submit"}, {"channel", channel}, {"ref", ref}, {"queue", queue}}, payload);
  }
  /// A submit record that may share its message with others.
  static std::string record(std::uint64_t ref, const std::string& payload) {
    return ws_client::frame(json::object{{"type", "submit"}, {"ref", ref}, {"queue", "resize"}, {"bytes", payload.size()}}, payload);
  }
};

}  // namespace

TEST_F(client_channel_test, a_submit_comes_back_as_an_outcome_with_the_result) {
  ws_client c(port, "/v1/client");
  c.send_binary(submit(0, 7, "resize", "1"));
  auto m = c.read();
  ASSERT_FALSE(m.error) << m.error.message();
  ASSERT_TRUE(m.binary);
  EXPECT_EQ(m.header.at("type").as_string(), "outcome");
  EXPECT_EQ(m.header.at("ref").as_int64(), 7);
  EXPECT_EQ(m.header.at("state").as_string(), "succeeded");
  EXPECT_EQ(m.header.at("attempts").as_int64(), 1);
  EXPECT_GT(m.header.at("task").as_int64(), 0);
  EXPECT_EQ(m.payload, "1");
}

TEST_F(client_channel_test, an_ordered_channel_delivers_outcomes_in_submission_order) {
  ws_client c(port, "/v1/client");
  c.send_text(R"({"type":"open","channel":1,"window":10,"ordered":true})");
  EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  c.send_binary(submit(1, 1, "resize", "80"));
  c.send_binary(submit(1, 2, "resize", "1"));
  c.send_binary(submit(1, 3, "resize", "40"));
  for (std::int64_t ref = 1; ref <= 3; ++ref) EXPECT_EQ(c.read().header.at("ref").as_int64(), ref);
}

TEST_F(client_channel_test, an_unordered_channel_delivers_outcomes_as_they_finish) {
  ws_client c(port, "/v1/client");
  c.send_text(R"({"type":"open","channel":2,"ordered":false})");
  EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  c.send_binary(submit(2, 1, "resize", "150"));
  c.send_binary(submit(2, 2, "resize", "1"));
  EXPECT_EQ(c.read().header.at("ref").as_int64(), 2);
  EXPECT_EQ(c.read().header.at("ref").as_int64(), 1);
}

TEST_F(client_channel_test, a_full_window_refuses_more_submits_on_that_channel_only) {
  ws_client c(port, "/v1/client");
  c.send_text(R"({"type":"open","channel":1,"window":1})");
  EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  c.send_binary(submit(1, 1, "resize", "100"));
  c.send_binary(submit(1, 2, "resize", "1"));
  c.send_binary(submit(0, 3, "resize", "1"));  // channel 0 has its own window
  auto refused = c.read();
  EXPECT_EQ(refused.header.at("type").as_string(), "rejected");
  EXPECT_EQ(refused.header.at("ref").as_int64(), 2);
  EXPECT_EQ(refused.header.at("code").as_string(), "window_full");
  EXPECT_EQ(c.read().header.at("ref").as_int64(), 3);
  EXPECT_EQ(c.read().header.at("ref").as_int64(), 1);
}

TEST_F(client_channel_test, submits_on_interleaved_channels_each_count_against_their_own_window) {
  ws_client c(port, "/v1/client");
  for (int ch : {1, 2}) {
    c.send_text(R"({"type":"open","channel":)" + std::to_string(ch) + R"(,"window":1})");
    EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  }
  c.send_binary(submit(1, 1, "resize", "100"));
  c.send_binary(submit(2, 2, "resize", "100"));
  c.send_binary(submit(1, 3, "resize", "1"));
  c.send_binary(submit(2, 4, "resize", "1"));
  std::map<std::int64_t, std::string> type_of;
  for (int i = 0; i < 4; ++i) {
    auto m = c.read();
    type_of[m.header.at("ref").as_int64()] = std::string(m.header.at("type").as_string());
  }
  EXPECT_EQ(type_of[1], "outcome");
  EXPECT_EQ(type_of[2], "outcome") << "channel 2's window was its own";
  EXPECT_EQ(type_of[3], "rejected");
  EXPECT_EQ(type_of[4], "rejected");
}

TEST_F(client_channel_test, an_outcome_sent_frees_its_place_in_the_window_on_either_kind_of_channel) {
  ws_client c(port, "/v1/client");
  c.send_text(R"({"type":"open","channel":1,"window":1,"ordered":false})");
  EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  c.send_text(R"({"type":"open","channel":2,"window":1,"ordered":true})");
  EXPECT_EQ(c.read().header.at("type").as_string(), "opened");
  for (std::uint64_t ref = 1; ref <= 3; ++ref) {
    for (std::uint64_t ch : {1, 2}) {
      c.send_binary(submit(ch, ref, "resize", "1"));
      auto m = c.read();
      EXPECT_EQ(m.header.at("type").as_string(), "outcome") << "channel " << ch << ", submit " << ref;
      EXPECT_EQ(m.header.at("ref").as_int64(), static_cast<std::int64_t>(ref));
    }
  }
}

TEST_F(client_channel_test, bad_input_gets_precise_errors_and_the_connection_goes_on) {
  ws_client c(port, "/v1/client");
  c.send_text("{not json");
  EXPECT_EQ(c.read().header.at("code").as_string(), "bad_json");
  c.send_text(R"({"type":"dance"})");
  EXPECT_EQ(c.read().header.at("code").as_string(), "unknown_type");
  c.send_text(R"({"type":"open","channel":1,"window":0})");
  EXPECT_EQ(c.read().header.at("code").as_string(), "invalid_argument");
  c.send_binary("\x00\x00");
  EXPECT_EQ(c.read().header.at("code").as_string(), "bad_frame");
  c.send_binary(std::string("\x00\x00\x01\x00", 4) + "{}");
  EXPECT_EQ(c.read().header.at("code").as_string(), "bad_frame");
  c.send_binary(submit(9, 1, "resize", "1"));
  EXPECT_EQ(c.read().header.at("code").as_string(), "unknown_channel");
  c.send_binary(submit(0, 2, "no-such-queue", "1"));
  auto unknown = c.read();
  EXPECT_EQ(unknown.header.at("code").as_string(), "unknown_queue");
  EXPECT_EQ(unknown.header.at("ref").as_int64(), 2);
  c.send_binary(ws_client::frame(json::object{{"type", "submit"}, {"ref", 3}, {"queue", "resize"}, {"priority", "high"}}, "1"));
  EXPECT_EQ(c.read().header.at("code").as_string(), "invalid_argument");
  c.send_binary(submit(0, 4, "resize", "1"));
  EXPECT_EQ(c.read().header.at("state").as_string(), "succeeded");
}

TEST_F(client_channel_test, a_submits_options_take_effect_in_either_header_form) {
  for (const auto format : {net::header_format::json, net::header_format::compact}) {
    SCOPED_TRACE(net::to_string(format));
    ws_client c(port, "/v1/client?accepted=true");
    const std::string key = std::string("same-key-") + std::string(net::to_string(format));
    auto submit_with = [&](std::uint64_t ref, std::uint64_t delay_ms) {
      net::record_writer w(format);
      w.field("type", "submit").field("ref", ref).field("queue", "resize").field("idempotency_key", std::string_view(key));
      if (delay_ms > 0) w.field("delay_ms", delay_ms);
      return std::move(w).finish(1) + "0";
    };
    const auto sent = std::chrono::steady_clock::now();
    c.send_binary(submit_with(1, 300));
    const auto first = c.read();
    ASSERT_EQ(first.header.at("type").as_string(), "accepted");
    c.send_binary(submit_with(2, 0));  // the same key: the first task again
    const auto second = c.read();
    ASSERT_EQ(second.header.at("type").as_string(), "accepted");
    EXPECT_TRUE(second.header.at("duplicate").as_bool());
    EXPECT_EQ(second.header.at("task"), first.header.at("task"));
    for (int outcomes = 0; outcomes < 2; ++outcomes) {
      const auto m = c.read();
      ASSERT_TRUE(m.binary) << m.header;
      EXPECT_EQ(m.header.at("state").as_string(), "succeeded");
    }
    EXPECT_GE(std::chrono::steady_clock::now() - sent, 300ms) << "delay_ms was read";
  }
}

TEST_F(client_channel_test, with_accepted_each_submit_is_acknowledged_with_its_task_id_before_its_outcome) {
  ws_client c(port, "/v1/client?accepted=true");
  c.send_binary(submit(0, 7, "resize", "20"));
  auto accepted = c.read();
  ASSERT_FALSE(accepted.binary);
  EXPECT_EQ(accepted.header.at("type").as_string(), "accepted");
  EXPECT_EQ(accepted.header.at("ref").as_int64(), 7);
  EXPECT_FALSE(accepted.header.at("duplicate").as_bool());
  auto outcome = c.read();
  ASSERT_TRUE(outcome.binary);
  EXPECT_EQ(outcome.header.at("task"), accepted.header.at("task"));
  EXPECT_THROW(ws_client(port, "/v1/client?accepted=maybe"), boost::system::system_error) << "refused before the upgrade";
}

TEST_F(client_channel_test, a_duplicate_of_an_ended_task_is_acknowledged_before_the_outcome_that_comes_with_it) {
  // The broker answers such a submit with its acceptance and its outcome in
  // one turn: the outcome must not overtake the acceptance on its way out.
  ws_client c(port, "/v1/client?accepted=true");
  auto submit_with_key = [](std::uint64_t ref) {
    return ws_client::frame(json::object{{"type", "submit"}, {"ref", ref}, {"queue", "resize"}, {"idempotency_key", "once"}}, "1");
  };
  c.send_binary(submit_with_key(1));
  const auto accepted = c.read();
  ASSERT_EQ(accepted.header.at("type").as_string(), "accepted");
  ASSERT_EQ(c.read().header.at("state").as_string(), "succeeded");
  for (std::uint64_t ref = 2; ref < 12; ++ref) {
    c.send_binary(submit_with_key(ref));
    const auto first = c.read();
    ASSERT_EQ(first.header.at("type").as_string(), "accepted") << "ref " << ref << ": " << first.header;
    EXPECT_TRUE(first.header.at("duplicate").as_bool());
    EXPECT_EQ(first.header.at("task"), accepted.header.at("task"));
    const auto outcome = c.read();
    ASSERT_TRUE(outcome.binary) << outcome.header;
    EXPECT_EQ(outcome.header.at("ref").as_int64(), static_cast<std::int64_t>(ref));
    EXPECT_EQ(outcome.header.at("state").as_string(), "succeeded");
  }
}

TEST_F(client_channel_test, a_client_that_reconnects_follows_its_tasks_by_id) {
  json::value task, quick;
  {
    ws_client first(port, "/v1/client?accepted=true");
    first.send_binary(submit(0, 7, "resize", "1500"));  // long enough to outlive the reconnect, even under valgrind
    task = first.read().header.at("task");
    first.send_binary(submit(0, 8, "resize", "300"));  // ends after this connection does
    for (auto m = first.read(); quick.is_null(); m = first.read())
      if (m.header.at("type") == "accepted") quick = m.header.at("task");
  }  // gone before the outcomes: they are lost to this connection, the tasks go on
  // The shorter one ends while the client is away; its outcome is kept (the client asked for acknowledgements).
  const auto quick_status = call(port, http::verb::get, "/v1/tasks/" + json::serialize(quick) + "?wait_ms=5000");
  ASSERT_EQ(quick_status.status, 200u) << quick_status.body;
  EXPECT_EQ(quick_status.json().at("state").as_string(), "succeeded");
  ws_client again(port, "/v1/client");
  again.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 0}, {"ref", 8}, {"task", quick}}));
  auto kept = again.read();
  ASSERT_TRUE(kept.binary) << json::serialize(kept.header);
  EXPECT_EQ(kept.header.at("state").as_string(), "succeeded") << "ended while the client was away, kept for it";
  EXPECT_EQ(kept.payload, "300");
  again.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 0}, {"ref", 9}, {"task", task}}));
  auto outcome = again.read();
  ASSERT_TRUE(outcome.binary) << json::serialize(outcome.header);
  EXPECT_EQ(outcome.header.at("ref").as_int64(), 9);
  EXPECT_EQ(outcome.header.at("task"), task);
  EXPECT_EQ(outcome.header.at("state").as_string(), "succeeded");
  EXPECT_EQ(outcome.payload, "1500");
  again.send_text(R"({"type":"follow","channel":0,"ref":10,"task":987654})");
  auto unknown = again.read();
  EXPECT_EQ(unknown.header.at("state").as_string(), "rejected") << "ended, or never was: its outcome cannot come";
  EXPECT_EQ(unknown.header.at("error").at("code").as_string(), "unknown_task");
  again.send_text(R"({"type":"follow","channel":0,"ref":11})");
  EXPECT_EQ(again.read().header.at("code").as_string(), "invalid_argument");
  again.send_text(R"({"type":"follow","channel":5,"ref":12,"task":1})");
  EXPECT_EQ(again.read().header.at("code").as_string(), "unknown_channel");
}

TEST_F(client_channel_test, several_submits_in_one_message_each_get_their_outcome) {
  ws_client c(port, "/v1/client");
  c.send_binary(record(1, "1") + record(2, "22") + submit(0, 3, "resize", "3"));  // the last needs no bytes
  std::map<std::int64_t, std::string> got;
  while (got.size() < 3) {
    auto m = c.read();
    ASSERT_FALSE(m.error) << m.error.message();
    ASSERT_TRUE(m.binary) << json::serialize(m.header);
    got[m.header.at("ref").as_int64()] = m.payload;
  }
  EXPECT_EQ(got, (std::map<std::int64_t, std::string>{{1, "1"}, {2, "22"}, {3, "3"}}));
}

TEST_F(client_channel_test, with_batch_outcomes_arrive_as_records_sharing_messages) {
  ws_client c(port, "/v1/client?batch=true");
  std::string message;
  for (int ref = 1; ref <= 20; ++ref) message += record(ref, "30");  // all finish together
  c.send_binary(message);
  std::set<std::int64_t> refs;
  int messages = 0;
  while (refs.size() < 20) {
    auto records = c.read_records();
    ASSERT_FALSE(records.front().error) << records.front().error.message();
    ++messages;
    for (const auto& r : records) {
      EXPECT_EQ(r.header.at("state").as_string(), "succeeded");
      EXPECT_EQ(r.payload, "30") << "each record's body is bounded by its bytes";
      refs.insert(r.header.at("ref").as_int64());
    }
  }
  EXPECT_LT(messages, 20) << "outcomes finishing together share messages";
}

TEST_F(client_channel_test, a_record_running_past_its_message_is_refused_after_those_before_it) {
  ws_client c(port, "/v1/client");
  const auto broken = ws_client::frame(json::object{{"type", "submit"}, {"ref", 2}, {"queue", "resize"}, {"bytes", 500}}, "1");
  c.send_binary(record(1, "1") + broken);
  auto first = c.read(), second = c.read();
  auto error = first.binary ? second : first;
  auto outcome = first.binary ? first : second;
  EXPECT_EQ(error.header.at("code").as_string(), "bad_frame");
  EXPECT_EQ(outcome.header.at("ref").as_int64(), 1) << "the record before the broken one was taken";
  EXPECT_EQ(outcome.header.at("state").as_string(), "succeeded");
}

TEST_F(client_channel_test, a_bad_batch_parameter_is_refused_before_the_upgrade) {
  EXPECT_THROW(ws_client(port, "/v1/client?batch=maybe"), boost::system::system_error);
}

TEST_F(client_channel_test, with_compact_headers_outcomes_come_compact_and_submits_are_read_in_either_form) {
  ws_client c(port, "/v1/client?batch=true&headers=compact");
  std::string message;
  for (std::uint64_t ref = 1; ref <= 3; ++ref) {
    net::record_writer w(message, net::header_format::compact);
    w.field("type", "submit").field("ref", ref).field("queue", "resize");
    const std::string payload = ref == 3 ? "not a number" : "1";  // the handler throws on the third
    w.end(payload.size());
    message += payload;
  }
  message += record(4, "1");  // a JSON one in the same message
  c.send_binary(message);
  std::map<std::int64_t, ws_client::message> got;
  while (got.size() < 4) {
    auto records = c.read_records();
    ASSERT_FALSE(records.front().error) << records.front().error.message();
    for (auto& r : records) {
      ASSERT_TRUE(r.binary) << json::serialize(r.header);
      EXPECT_TRUE(r.compact) << "asked for compact headers";
      got[r.header.at("ref").to_number<std::int64_t>()] = std::move(r);
    }
  }
  for (std::int64_t ref : {1, 2, 4}) {
    EXPECT_EQ(got[ref].header.at("state").as_string(), "succeeded") << ref;
    EXPECT_EQ(got[ref].payload, "1") << ref;
  }
  EXPECT_EQ(got[3].header.at("state").as_string(), "dead") << "a handler that throws is retried, then buried";
  EXPECT_FALSE(got[3].header.at("error").at("message").as_string().empty()) << "the error object travels as JSON inside";
}

TEST_F(client_channel_test, a_bad_headers_parameter_is_refused_before_the_upgrade) {
  EXPECT_THROW(ws_client(port, "/v1/client?headers=xml"), boost::system::system_error);
}

// Not under valgrind (thousands of messages): its own suite name.
class client_follows_test : public client_channel_test {};

TEST_F(client_follows_test, follows_outstanding_on_one_connection_are_bounded) {
  auto h = *n->submit("resize", bytes::copy_from("3000"));
  ws_client c(port, "/v1/client");
  c.send_text(R"({"type":"open","channel":1,"window":20000})");
  ASSERT_EQ(c.read().header.at("type").as_string(), "opened");
  for (int ref = 0; ref < 10'000; ++ref)
    c.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 1}, {"ref", ref}, {"task", h.id().value}}));
  c.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 1}, {"ref", 10'000}, {"task", h.id().value}}));
  auto refused = c.read();  // the first message back: the follows wait for the task
  EXPECT_EQ(refused.header.at("type").as_string(), "rejected");
  EXPECT_EQ(refused.header.at("code").as_string(), "too_many_follows");
  EXPECT_EQ(refused.header.at("ref").as_int64(), 10'000);
  {
    ws_client gone(port, "/v1/client");
    gone.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 0}, {"ref", 1}, {"task", h.id().value}}));
    gone.send_text(R"({"type":"heartbeat"})");
    ASSERT_EQ(gone.read().header.at("type").as_string(), "heartbeat");  // the follow was taken
  }  // and is taken off the task as this connection ends
  h.cancel();  // the follows hear the outcome and stop counting
  for (int i = 0; i < 10'000; ++i) ASSERT_EQ(c.read().header.at("state").as_string(), "cancelled") << i;
  c.send_text(json::serialize(json::object{{"type", "follow"}, {"channel", 1}, {"ref", 10'001}, {"task", h.id().value}}));
  EXPECT_EQ(c.read().header.at("error").at("code").as_string(), "unknown_task") << "taken, then answered: the task ended";
}

class client_channel_token_test : public client_channel_test {
 protected:
  client_channel_token_test() { gateway_config.tokens = {"s3cret"}; }
};

TEST_F(client_channel_token_test, an_upgrade_without_the_token_gets_401) {
  EXPECT_THROW(ws_client(port, "/v1/client"), boost::system::system_error);
}

class client_channel_silence_test : public client_channel_test {
 protected:
  // A ping after 50 ms of silence; dropped after 100 ms without an answer.
  client_channel_silence_test() { gateway_config.heartbeat_interval = 50ms; }
};

TEST_F(client_channel_silence_test, a_quiet_client_that_answers_pings_is_kept) {
  ws_client c(port, "/v1/client");
  c.send_binary(submit(0, 1, "resize", "400"));
  const auto m = c.read();  // 400 ms of silence from the client; its reads answer the node's pings
  ASSERT_FALSE(m.error) << m.error.message();
  EXPECT_EQ(m.header.at("type").as_string(), "outcome");
  EXPECT_EQ(m.payload, "400");
}

TEST_F(client_channel_silence_test, a_client_gone_silent_is_dropped) {
  tcp_proxy proxy(port);
  ws_client c(proxy.port(), "/v1/client");
  c.send_binary(submit(0, 1, "resize", "1"));
  ASSERT_EQ(c.read().header.at("type").as_string(), "outcome");
  proxy.set_frozen(true);  // nothing gets through either way, and nothing says so
  const auto frozen_at = std::chrono::steady_clock::now();
  while (proxy.target_ends() == 0 && std::chrono::steady_clock::now() - frozen_at < 3s) std::this_thread::sleep_for(5ms);
  const auto silent_for = std::chrono::steady_clock::now() - frozen_at;
  EXPECT_EQ(proxy.target_ends(), 1) << "the node closed the connection";
  EXPECT_GE(silent_for, 50ms) << "not before a ping went unanswered";
  EXPECT_LT(silent_for, 1500ms) << "dropped after about twice the heartbeat interval (100 ms)";
}
