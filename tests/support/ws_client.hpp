#pragma once
// A blocking WebSocket client for loopback tests, written from docs/protocol.md:
// text frames are JSON, binary frames are [u32 BE header length][JSON header][bytes].
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <string>

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
    boost::system::error_code error;
  };

  message read() {
    message m;
    boost::beast::flat_buffer buffer;
    ws_.read(buffer, m.error);
    if (m.error) return m;
    std::string data = boost::beast::buffers_to_string(buffer.data());
    m.binary = ws_.got_binary();
    if (!m.binary) {
      m.header = boost::json::parse(data).as_object();
      return m;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(data.data());
    const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    m.header = boost::json::parse(data.substr(4, len)).as_object();
    m.payload = data.substr(4 + len);
    return m;
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
