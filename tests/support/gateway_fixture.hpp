#pragma once
// A node and its gateway on an ephemeral loopback port, for the net tests.
#include <gtest/gtest.h>

#include <boost/beast/core/detail/base64.hpp>

#include <chrono>
#include <string_view>
#include <thread>

#include "drover/net/gateway.hpp"
#include "support/http_client.hpp"

namespace drover::test_support {

inline std::string b64(const std::string& s) {
  namespace base64 = boost::beast::detail::base64;
  std::string out(base64::encoded_size(s.size()), '\0');
  out.resize(base64::encode(out.data(), s.data(), s.size()));
  return out;
}

/// Polls `p` every millisecond until it holds (true) or `limit` passes (false).
template <class Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!p()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class gateway_fixture : public ::testing::Test {
 protected:
  /// Adjust before SetUp runs (in a derived constructor).
  net::gateway_config gateway_config = [] {
    net::gateway_config g;
    g.port = 0;
    return g;
  }();

  /// As `drover serve` runs it: the broker on the gateway's I/O thread.
  node_config node_settings = [] {
    node_config c;
    c.seed = 1;
    c.hostable_actors = true;
    return c;
  }();

  void SetUp() override {
    n = node::start(node_settings);
    ASSERT_TRUE(n->declare_queue("resize"));
    auto started = net::gateway::start(*n, gateway_config);
    ASSERT_TRUE(started) << started.err().message;
    gw = std::move(*started);
    port = gw->port();
  }

  void TearDown() override {
    gw->stop();
    n->stop();
  }

  http_reply post_json(const std::string& path, const json::object& body) {
    return call(port, http::verb::post, path, json::serialize(body));
  }

  /// `GET /v1/runtimes`' entry for that session of that transport (session
  /// ids are per transport), or an empty object.
  json::object listed_runtime(std::string_view transport, const json::value& session) {
    const auto doc = call(port, http::verb::get, "/v1/runtimes").json();
    for (const auto& r : doc.at("runtimes").as_array())
      if (r.at("transport").as_string() == transport && r.at("session") == session) return r.as_object();
    return {};
  }

  /// `GET /v1/queues`' entry for that queue, or an empty object.
  json::object listed_queue(std::string_view name) {
    const auto doc = call(port, http::verb::get, "/v1/queues").json();
    for (const auto& q : doc.at("queues").as_array())
      if (q.at("name").as_string() == name) return q.as_object();
    return {};
  }

  std::unique_ptr<node> n;
  std::unique_ptr<net::gateway> gw;
  std::uint16_t port = 0;
};

}  // namespace drover::test_support
