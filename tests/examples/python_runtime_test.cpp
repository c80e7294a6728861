// examples/python/drover_runtime.py, a runtime written in Python from
// docs/protocol.md alone, against a real `drover serve` process: tasks
// submitted over HTTP come back as its command's output over WebSocket, SSE
// and long-poll, exit statuses decide retries, a killed runtime's task goes
// to another, a dropped connection resumes its session with its lease, a
// cancel stops the command, and SIGTERM hands its tasks back at once.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <unistd.h>

#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/serve_process.hpp"
#include "support/tcp_proxy.hpp"

using namespace drover::test_support;

namespace {

/// A node with a short heartbeat and lease TTL, so that faults resolve fast.
struct node_process {
  child_process process;
  std::uint16_t port = 0;

  explicit node_process(const std::string& settings = "runtime_lease_ttl_ms = 300\n")
      : process(child_process::spawn(
            {DROVER_BIN, "serve", "--config",
             write_config("python_runtime_test.toml",
                          "[gateway]\nlisten = \"127.0.0.1:0\"\nheartbeat_ms = 500\n" + settings)})),
        port(port_from(process.line())) {}
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

child_process python_runtime(const std::string& address, const std::string& queue, const std::string& command,
                             const std::string& transport = "websocket", std::vector<std::string> more = {}) {
  std::vector<std::string> args{PYTHON3,   DROVER_PYTHON_RUNTIME, "--connect", address, "--queue", queue, "--exec",
                                command,   "--transport",         transport, "--capacity", "4"};
  args.insert(args.end(), more.begin(), more.end());
  return child_process::spawn(std::move(args));
}

boost::json::object outcome(std::uint16_t port, const std::string& id) {
  return call(port, http::verb::get, "/v1/tasks/" + id + "?wait_ms=10000").json().as_object();
}

std::string result(std::uint16_t port, const std::string& id) {
  return call(port, http::verb::get, "/v1/tasks/" + id + "/result").body;
}

std::string all_byte_values() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  return bytes;
}

void expect_serves_payloads_exactly(const std::string& transport) {
  node_process node;
  ASSERT_NE(node.port, 0);
  auto runtime = python_runtime(node.address(), "copy", "cat", transport);
  ASSERT_NE(runtime.line().find("serving copy"), std::string::npos);
  // Text, every byte value, and one large enough for a 64-bit WebSocket length.
  std::vector<std::string> payloads{"hello", all_byte_values(), std::string(200'000, 'x')};
  for (int i = 0; i < 30; ++i) payloads.push_back("task " + std::to_string(i));
  std::vector<std::string> ids;
  for (const auto& p : payloads) ids.push_back(submit(node.port, "copy", p));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto status = outcome(node.port, ids[i]);
    ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
    EXPECT_EQ(result(node.port, ids[i]), payloads[i]) << "task " << i;
  }
  EXPECT_EQ(runtime.stop(SIGTERM), 0);
}

}  // namespace

TEST(python_runtime, a_websocket_runtime_returns_every_payload_byte_for_byte) {
  expect_serves_payloads_exactly("websocket");
}

TEST(python_runtime, a_long_poll_runtime_returns_every_payload_byte_for_byte) {
  expect_serves_payloads_exactly("poll");
}

TEST(python_runtime, an_sse_runtime_returns_every_payload_byte_for_byte) {
  expect_serves_payloads_exactly("sse");
}

TEST(python_runtime, exit_status_100_fails_for_good_and_any_other_failure_is_retried) {
  node_process node;
  ASSERT_NE(node.port, 0);
  for (const std::string transport : {"websocket", "poll", "sse"}) {
    SCOPED_TRACE(transport);
    const std::string queue = "flaky-" + transport;
    auto runtime = python_runtime(node.address(), queue,
                                  "read payload; [ \"$payload\" = final ] && exit 100; "
                                  "[ \"$DROVER_ATTEMPT\" = 1 ] && exit 3; printf \"ok on $DROVER_ATTEMPT\"",
                                  transport);
    ASSERT_NE(runtime.line().find("serving"), std::string::npos);
    const auto retried = submit(node.port, queue, "again\n", "?max_attempts=3");
    const auto final = submit(node.port, queue, "final\n", "?max_attempts=3");
    auto status = outcome(node.port, retried);
    EXPECT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
    EXPECT_EQ(status.at("attempts").as_int64(), 2);
    EXPECT_EQ(result(node.port, retried), "ok on 2");
    status = outcome(node.port, final);
    EXPECT_EQ(status.at("state").as_string(), "failed") << boost::json::serialize(status);
    EXPECT_EQ(status.at("attempts").as_int64(), 1);
    EXPECT_NE(boost::json::serialize(status.at("error")).find("status 100"), std::string::npos);
    EXPECT_EQ(runtime.stop(SIGTERM), 0);
  }
}

TEST(python_runtime, a_runtime_killed_mid_task_hands_its_task_to_another) {
  // A WebSocket runtime's dropped session waits the lease TTL, an HTTP one the idle time.
  node_process node("runtime_lease_ttl_ms = 300\npoll_session_idle_ms = 500\n");
  ASSERT_NE(node.port, 0);
  for (const std::string transport : {"websocket", "poll", "sse"}) {
    SCOPED_TRACE(transport);
    const std::string queue = "work-" + transport;
    auto doomed = python_runtime(node.address(), queue, "cat >/dev/null; sleep 5; printf doomed", transport);
    ASSERT_NE(doomed.line().find("serving"), std::string::npos);
    const auto id = submit(node.port, queue, "payload");
    ASSERT_TRUE(becomes_leased(node.port, id));
    auto rescuer = python_runtime(node.address(), queue,
                                  "cat >/dev/null; printf \"rescued, attempt $DROVER_ATTEMPT\"", transport);
    ASSERT_NE(rescuer.line().find("serving"), std::string::npos);
    EXPECT_EQ(doomed.stop(SIGKILL), 128 + SIGKILL);
    const auto status = outcome(node.port, id);
    ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
    EXPECT_EQ(status.at("attempts").as_int64(), 2);
    EXPECT_EQ(result(node.port, id), "rescued, attempt 2");
    EXPECT_EQ(rescuer.stop(SIGTERM), 0);
  }
}

TEST(python_runtime, a_dropped_connection_resumes_its_session_and_the_task_keeps_its_lease) {
  node_process node("runtime_lease_ttl_ms = 10000\n");
  ASSERT_NE(node.port, 0);
  tcp_proxy proxy(node.port);
  for (const std::string transport : {"websocket", "sse"}) {
    SCOPED_TRACE(transport);
    const std::string queue = "slow-" + transport;
    auto runtime = python_runtime("127.0.0.1:" + std::to_string(proxy.port()), queue,
                                  "cat >/dev/null; sleep 1; printf \"done on attempt $DROVER_ATTEMPT\"", transport);
    ASSERT_NE(runtime.line().find("serving"), std::string::npos);
    const auto id = submit(node.port, queue, "payload");
    ASSERT_TRUE(becomes_leased(node.port, id));
    proxy.sever();  // no close frame: the node keeps the session
    EXPECT_NE(runtime.line().find("resumed"), std::string::npos);
    const auto status = outcome(node.port, id);
    ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
    EXPECT_EQ(status.at("attempts").as_int64(), 1) << "the resumed session kept the lease";
    EXPECT_EQ(result(node.port, id), "done on attempt 1");
    EXPECT_EQ(runtime.stop(SIGTERM), 0);
  }
  const auto sessions = call(node.port, http::verb::get, "/v1/runtimes").json().at("sessions");
  EXPECT_EQ(sessions.at("resumed").as_int64(), 1) << "the WebSocket session";
  EXPECT_EQ(sessions.at("refused_reports").as_int64(), 0);
}

TEST(python_runtime, a_result_finished_while_disconnected_is_sent_after_the_resume) {
  node_process node("runtime_lease_ttl_ms = 10000\n");
  ASSERT_NE(node.port, 0);
  tcp_proxy proxy(node.port);
  auto runtime = python_runtime("127.0.0.1:" + std::to_string(proxy.port()), "slow",
                                "cat >/dev/null; sleep 0.3; printf \"done on attempt $DROVER_ATTEMPT\"");
  ASSERT_NE(runtime.line().find("serving"), std::string::npos);
  const auto id = submit(node.port, "slow", "payload");
  ASSERT_TRUE(becomes_leased(node.port, id));
  proxy.set_accepting(false);
  proxy.sever();  // the command finishes while the runtime cannot reconnect
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(call(node.port, http::verb::get, "/v1/tasks/" + id).json().at("state").as_string(), "leased");
  proxy.set_accepting(true);
  EXPECT_NE(runtime.line().find("(resumed)"), std::string::npos);
  const auto status = outcome(node.port, id);
  ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
  EXPECT_EQ(status.at("attempts").as_int64(), 1) << "the result kept for the resume was sent";
  EXPECT_EQ(result(node.port, id), "done on attempt 1");
  EXPECT_EQ(runtime.stop(SIGTERM), 0);
}

TEST(python_runtime, a_cancel_stops_the_running_command) {
  node_process node;
  ASSERT_NE(node.port, 0);
  const std::string marker = ::testing::TempDir() + std::to_string(getpid()) + "-python_runtime_cancel_marker";
  std::remove(marker.c_str());
  auto runtime = python_runtime(node.address(), "long", "cat >/dev/null; sleep 2; touch " + marker);
  ASSERT_NE(runtime.line().find("serving"), std::string::npos);
  const auto id = submit(node.port, "long", "payload");
  ASSERT_TRUE(becomes_leased(node.port, id));
  EXPECT_EQ(call(node.port, http::verb::delete_, "/v1/tasks/" + id).status, 202u);
  EXPECT_EQ(outcome(node.port, id).at("state").as_string(), "cancelled");
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the cancelled command ran to its end";
  EXPECT_EQ(runtime.stop(SIGTERM), 0);
}

TEST(python_runtime, sigterm_exits_0_and_the_node_requeues_its_tasks_at_once) {
  // Lease TTL and idle timeout of a minute: only the runtime's leaving hands the task back in time.
  node_process node("runtime_lease_ttl_ms = 60000\npoll_session_idle_ms = 60000\n");
  ASSERT_NE(node.port, 0);
  for (const std::string transport : {"websocket", "poll", "sse"}) {
    SCOPED_TRACE(transport);
    const std::string queue = "work-" + transport;
    auto leaving = python_runtime(node.address(), queue, "cat >/dev/null; sleep 5; printf late", transport);
    ASSERT_NE(leaving.line().find("serving"), std::string::npos);
    const auto id = submit(node.port, queue, "payload");
    ASSERT_TRUE(becomes_leased(node.port, id));
    const auto before = std::chrono::steady_clock::now();
    EXPECT_EQ(leaving.stop(SIGTERM), 0);
    EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(3));
    auto next = python_runtime(node.address(), queue, "cat >/dev/null; printf \"attempt $DROVER_ATTEMPT\"", transport);
    ASSERT_NE(next.line().find("serving"), std::string::npos);
    const auto status = outcome(node.port, id);
    ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
    EXPECT_EQ(result(node.port, id), "attempt 2");
    EXPECT_EQ(next.stop(SIGTERM), 0);
  }
}

TEST(python_runtime, an_idle_websocket_runtime_keeps_its_connection_through_the_nodes_pings) {
  node_process node;  // heartbeat 500 ms: the runtime gives a silent node up after 2 s
  ASSERT_NE(node.port, 0);
  auto runtime = python_runtime(node.address(), "quiet", "cat");
  const auto banner = runtime.line();
  ASSERT_NE(banner.find("serving"), std::string::npos);
  const auto session = std::stoll(banner.substr(banner.find("session ") + 8));
  std::this_thread::sleep_for(std::chrono::milliseconds(3500));
  const auto listing = call(node.port, http::verb::get, "/v1/runtimes").json();
  const auto& runtimes = listing.at("runtimes").as_array();
  ASSERT_EQ(runtimes.size(), 1u) << boost::json::serialize(listing);
  EXPECT_EQ(runtimes[0].at("session").as_int64(), session) << "the runtime reconnected";
  EXPECT_EQ(listing.at("sessions").at("parked").as_int64(), 0) << "the connection dropped";
  const auto id = submit(node.port, "quiet", "still here");
  EXPECT_EQ(outcome(node.port, id).at("state").as_string(), "succeeded");
  EXPECT_EQ(runtime.stop(SIGTERM), 0);
}

TEST(python_runtime, a_long_poll_runtime_busy_past_the_session_idle_time_keeps_its_session) {
  node_process node("poll_session_idle_ms = 1000\n");
  ASSERT_NE(node.port, 0);
  auto runtime = python_runtime(node.address(), "busy", "cat >/dev/null; sleep 3; printf \"attempt $DROVER_ATTEMPT\"",
                                "poll", {"--capacity", "1", "--poll-keepalive-ms", "200"});
  ASSERT_NE(runtime.line().find("serving"), std::string::npos);
  const auto id = submit(node.port, "busy", "payload");
  const auto status = outcome(node.port, id);
  ASSERT_EQ(status.at("state").as_string(), "succeeded") << boost::json::serialize(status);
  EXPECT_EQ(result(node.port, id), "attempt 1") << "the session expired under its running task";
  EXPECT_EQ(runtime.stop(SIGTERM), 0);
}
