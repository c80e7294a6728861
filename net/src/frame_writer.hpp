#pragma once
// The writing side shared by every WebSocket session (runtime sessions,
// client sessions, the runtime client): a frame waiting in an outbox, how
// it is written, and the single writer's burst and end. A text frame is its
// JSON; a binary frame is its head (length + JSON header) and body (payload
// or result bytes, sent from their own buffer in one gathered write).
#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
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

/// Writes what `outbox` holds (frames derived from out_frame) while the
/// session's `attached` timer is still this writer's `wake`, corking the
/// stream (coalescing_stream) so the whole burst is one send. Returns the
/// frame whose write failed, if one did.
template <class WebSocket, class Outbox>
boost::asio::awaitable<std::optional<typename Outbox::value_type>> write_burst(
    WebSocket& ws, Outbox& outbox, boost::asio::steady_timer* const& attached, const boost::asio::steady_timer& wake) {
  ws.next_layer().cork();
  while (!outbox.empty() && attached == &wake) {
    auto f = std::move(outbox.front());
    outbox.pop_front();
    if (co_await write_frame(ws, f)) co_return std::move(f);
  }
  ws.next_layer().uncork();
  co_return std::nullopt;
}

/// Sleeps the writer until a frame is queued (whoever queues one cancels `wake`).
inline boost::asio::awaitable<void> wait_for_frames(boost::asio::steady_timer& wake) {
  wake.expires_at(boost::asio::steady_timer::time_point::max());
  co_await wake.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
}

/// Marks a writer's end in a flag its connection polls. Shared, never a
/// reference into the connection's frame: when an I/O context shuts down
/// it destroys suspended frames in any order (docs/stack-notes.md).
struct writer_end {
  std::shared_ptr<bool> done;
  ~writer_end() { *done = true; }
};

/// The connection waits here for its writer, which refers to the stream
/// and timer the connection owns.
inline boost::asio::awaitable<void> wait_for_writer(const std::shared_ptr<bool>& done) {
  boost::asio::steady_timer pause(co_await boost::asio::this_coro::executor);
  while (!*done) {
    pause.expires_after(std::chrono::milliseconds(1));
    co_await pause.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

}  // namespace drover::net
