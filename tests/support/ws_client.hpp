#pragma once
// A blocking WebSocket client for loopback tests, written from docs/protocol.md:
// text frames are JSON, binary frames are [u32 BE header length][header][bytes],
// the header JSON or compact.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "drover/net/compact_header.hpp"
#include "drover/net/record_header.hpp"

namespace drover::test_support {

class ws_client {
 public:
  ws_client(std::uint16_t port, const std::string& path) : ws_(io_) {
    namespace basio = boost::asio;
    ws_.next_layer().connect({basio::ip::make_address("127.0.0.1"), port});
    ws_.handshake("127.0.0.1", path);
  }

  void send_text(const std::string& text) {
    ws_.text(true);
    ws_.write(boost::asio::buffer(text));
  }
  void send_binary(const std::string& bytes) {
    ws_.binary(true);
    ws_.write(boost::asio::buffer(bytes));
  }

  struct message {
    bool binary = false;
    boost::json::object header;  // text: the message; binary: the frame header
    std::string payload;         // binary: the bytes after the header
    bool compact = false;        // binary: the header came in the compact form
    boost::system::error_code error;
  };

  /// One message; a binary one as its first record, with everything after
  /// that record's header as `payload`.
  message read() {
    auto all = read_records(false);
    return std::move(all.front());
  }

  /// One message; a binary one split into its records, each body bounded
  /// by its header's `bytes` (the last may lack it: the rest is its body).
  std::vector<message> read_records(bool split = true) {
    std::vector<message> out(1);
    boost::beast::flat_buffer buffer;
    ws_.read(buffer, out[0].error);
    if (out[0].error) return out;
    std::string data = boost::beast::buffers_to_string(buffer.data());
    out[0].binary = ws_.got_binary();
    if (!out[0].binary) {
      out[0].header = boost::json::parse(data).as_object();
      return out;
    }
    out.clear();
    for (std::size_t at = 0; at < data.size();) {
      message m;
      m.binary = true;
      const auto* p = reinterpret_cast<const unsigned char*>(data.data() + at);
      const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
      m.header = header_object(data.substr(at + 4, len), m.compact);
      const std::size_t body = at + 4 + len;
      const auto* bytes = m.header.if_contains("bytes");
      const std::size_t size = split && bytes ? static_cast<std::size_t>(bytes->to_number<std::uint64_t>()) : data.size() - body;
      m.payload = data.substr(body, size);
      at = body + size;
      out.push_back(std::move(m));
    }
    return out;
  }

  /// A record's header as a JSON object: JSON parsed as such, a compact
  /// one (protocol.md, Compact headers) through the node's own reader.
  static boost::json::object header_object(const std::string& text, bool& compact) {
    compact = !text.empty() && static_cast<unsigned char>(text.front()) == net::compact::marker;
    if (!compact) return boost::json::parse(text).as_object();
    net::record_header h;
    if (!h.read(text)) throw std::runtime_error("a compact header that does not read");
    return h.object();
  }

  static std::string frame(const boost::json::object& header, const std::string& payload) {
    const std::string h = boost::json::serialize(header);
    std::string out(4, '\0');
    out[0] = static_cast<char>(h.size() >> 24), out[1] = static_cast<char>(h.size() >> 16);
    out[2] = static_cast<char>(h.size() >> 8), out[3] = static_cast<char>(h.size());
    return out + h + payload;
  }

  boost::beast::websocket::close_reason reason() const { return ws_.reason(); }
  void close() { ws_.close(boost::beast::websocket::close_code::normal); }

 private:
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> ws_;
};

}  // namespace drover::test_support
