#include "idle_http_runtimes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

namespace drover::bench {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

using counts = idle_http_runtimes::counts;

asio::awaitable<bool> connect(tcp::socket& socket, std::uint16_t port) {
  auto [ec] = co_await socket.async_connect({asio::ip::make_address("127.0.0.1"), port}, tuple);
  co_return !ec;
}

/// Claims, and claims again whenever a claim comes back (empty, once its wait is over).
asio::awaitable<void> poll_runtime(std::uint16_t port, std::string queue, std::uint32_t wait_ms, counts& c) {
  tcp::socket socket(co_await asio::this_coro::executor);
  if (!co_await connect(socket, port)) {
    ++c.failed;
    co_return;
  }
  boost::beast::flat_buffer buffer;
  std::optional<std::uint64_t> session;
  for (;;) {
    boost::json::object claim{{"max", 1}, {"wait_ms", session ? wait_ms : 0}};
    if (session)
      claim["session"] = *session;
    else
      claim["queues"] = boost::json::array{boost::json::string(queue)};
    http::request<http::string_body> req{http::verb::post, "/v1/runtime/claim", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    req.body() = boost::json::serialize(claim);
    req.prepare_payload();
    if (auto [ec, n] = co_await http::async_write(socket, req, tuple); ec) break;
    http::response<http::string_body> res;
    auto [ec, n] = co_await http::async_read(socket, buffer, res, tuple);
    if (ec || res.result() != http::status::ok) break;
    ++c.answers;
    if (!session) {
      session = boost::json::parse(res.body()).at("session").to_number<std::uint64_t>();
      ++c.ready;  // the node knows it now; from here on its claims wait
    }
  }
  ++c.failed;
}

/// Opens a stream and reads it (its welcome, then keepalives) until it ends.
asio::awaitable<void> sse_runtime(std::uint16_t port, std::string queue, counts& c) {
  tcp::socket socket(co_await asio::this_coro::executor);
  if (!co_await connect(socket, port)) {
    ++c.failed;
    co_return;
  }
  const std::string request = "GET /v1/runtime/stream?queues=" + queue +
                              "&capacity=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
  if (auto [ec, n] = co_await asio::async_write(socket, asio::buffer(request), tuple); ec) {
    ++c.failed;
    co_return;
  }
  char buf[4096];
  bool welcomed = false;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(buf), tuple);
    if (ec) break;
    ++c.answers;
    if (!welcomed && std::string_view(buf, n).find("event: welcome") != std::string_view::npos) {
      welcomed = true;
      ++c.ready;
    }
  }
  ++c.failed;
}

}  // namespace

idle_http_runtimes::idle_http_runtimes(std::uint16_t port, const std::string& transport, std::uint32_t count,
                                       const std::string& queue, std::uint32_t wait_ms) {
  for (std::uint32_t i = 0; i < count; ++i) {
    if (transport == "sse")
      asio::co_spawn(io_, sse_runtime(port, queue, counts_), asio::detached);
    else
      asio::co_spawn(io_, poll_runtime(port, queue, wait_ms, counts_), asio::detached);
  }
  thread_ = std::thread([this] { io_.run(); });
}

idle_http_runtimes::~idle_http_runtimes() {
  io_.stop();
  thread_.join();
}

}  // namespace drover::bench
