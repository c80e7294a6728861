#pragma once
// A blocking HTTP/1.1 client for loopback tests (Beast, one request per connection).
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace drover::test_support {

namespace basio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using tcp = basio::ip::tcp;

struct http_reply {
  unsigned status = 0;
  std::string body;
  std::string allow;
  json::value json() const { return json::parse(body); }
};

inline http_reply call(std::uint16_t port, http::verb verb, const std::string& target, std::string body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
  basio::io_context io;
  tcp::socket socket(io);
  socket.connect({basio::ip::make_address("127.0.0.1"), port});
  http::request<http::string_body> req{verb, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (auto& [k, v] : headers) req.set(k, v);
  req.body() = std::move(body);
  req.prepare_payload();
  http::write(socket, req);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(socket, buffer, res);
  return {static_cast<unsigned>(res.result_int()), res.body(), std::string(res[http::field::allow])};
}

inline std::string send_raw(std::uint16_t port, const std::string& bytes) {
  basio::io_context io;
  tcp::socket socket(io);
  socket.connect({basio::ip::make_address("127.0.0.1"), port});
  basio::write(socket, basio::buffer(bytes));
  std::string out;
  boost::system::error_code ec;
  char chunk[4096];
  for (;;) {
    const auto n = socket.read_some(basio::buffer(chunk), ec);
    out.append(chunk, n);
    if (ec) break;
  }
  return out;
}

}  // namespace drover::test_support
