#pragma once
// A blocking Beast WebSocket peer's side of a test: every message it reads
// until the connection closes.
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace drover::test_support {

struct read_message {
  bool binary;
  std::string bytes;
};

inline std::vector<read_message> read_until_closed(
    boost::beast::websocket::stream<boost::asio::ip::tcp::socket>& ws) {
  std::vector<read_message> out;
  for (;;) {
    boost::beast::flat_buffer buffer;
    boost::beast::error_code ec;
    ws.read(buffer, ec);
    if (ec) return out;
    out.push_back({ws.got_binary(), boost::beast::buffers_to_string(buffer.data())});
  }
}

}  // namespace drover::test_support
