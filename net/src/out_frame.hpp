#pragma once
// A WebSocket message waiting in a session's outbox, and how it is written:
// a text frame is its JSON; a binary frame is its head (length + JSON
// header) and body (the payload or result bytes, sent from their own buffer
// in one gathered write, never copied).
#include <array>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>

#include "drover/core/bytes.hpp"

namespace drover::net {

struct out_frame {
  bool binary = false;
  std::string head;  // text: the JSON; binary: 4-byte length + JSON header
  core::bytes body;  // binary: sent as is
};

template <class WebSocket>
boost::asio::awaitable<boost::beast::error_code> write_frame(WebSocket& ws, const out_frame& f) {
  constexpr auto tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  ws.binary(f.binary);
  boost::beast::error_code ec;
  if (f.binary) {
    std::array<boost::asio::const_buffer, 2> parts{boost::asio::buffer(f.head), boost::asio::buffer(f.body.data(), f.body.size())};
    std::tie(ec, std::ignore) = co_await ws.async_write(parts, tuple);
  } else {
    std::tie(ec, std::ignore) = co_await ws.async_write(boost::asio::buffer(f.head), tuple);
  }
  co_return ec;
}

}  // namespace drover::net
