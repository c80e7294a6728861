#pragma once
// The writing side shared by every WebSocket session (runtime sessions,
// client sessions, the runtime client): a frame waiting in an outbox, how
// it is written, and the single writer's burst and end. A text frame is its
// JSON; a binary frame is its head (length + JSON header) and body (payload
// or result bytes, sent from their own buffer in one gathered write).
#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/error.hpp>

#include "drover/core/bytes.hpp"

namespace drover::net {

struct out_frame {
  bool binary = false;
  std::string head;  // text: the JSON; binary: 4-byte length + JSON header
  core::bytes body;  // binary: sent as is
};

/// Writes one frame as one message, synchronously: the stream under the
/// WebSocket is a corked coalescing_stream, whose synchronous writes only
/// gather, so a message costs no handler posted and resumed.
template <class WebSocket>
boost::beast::error_code write_frame(WebSocket& ws, const out_frame& f) {
  ws.binary(f.binary);
  boost::beast::error_code ec;
  if (f.binary) {
    std::array<boost::asio::const_buffer, 2> parts{boost::asio::buffer(f.head), boost::asio::buffer(f.body.data(), f.body.size())};
    ws.write(parts, ec);
  } else {
    ws.write(boost::asio::buffer(f.head), ec);
  }
  return ec;
}

/// Which end of the WebSocket writes: a server's frames are not masked.
enum class writer_role { client, server };

/// A binary frame's header (RFC 6455 section 5.2): FIN and the opcode,
/// then the length in the fewest bytes, with the mask bit when `masked`.
/// Returns the bytes used of `header`.
inline std::size_t binary_frame_header(std::array<char, 14>& header, std::uint64_t n, bool masked) {
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  std::size_t used = 2;
  header[0] = static_cast<char>(0x80 | 0x2);  // FIN, binary
  if (n < 126) {
    header[1] = static_cast<char>(mask_bit | static_cast<char>(n));
  } else if (n <= 0xffff) {
    header[1] = static_cast<char>(mask_bit | 126);
    header[2] = static_cast<char>(n >> 8), header[3] = static_cast<char>(n);
    used = 4;
  } else {
    header[1] = static_cast<char>(mask_bit | 127);
    for (int i = 0; i < 8; ++i) header[2 + i] = static_cast<char>(n >> (56 - 8 * i));
    used = 10;
  }
  return used;
}

/// A masking key for a client's frame. RFC 6455 asks for keys a script in
/// a browser cannot predict (so that it cannot shape the bytes an
/// intermediary sees); a runtime's frames carry no such script's bytes,
/// so a per-thread generator seeded from std::random_device serves, as
/// Beast's own non-secure generator would.
inline std::uint32_t client_mask_key() {
  thread_local std::uint64_t state = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  state += 0x9e3779b97f4a7c15ULL;  // splitmix64
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}

/// XORs `bytes` with the 4-byte masking key (RFC 6455 section 5.3), eight bytes at a time.
inline void mask_in_place(char* bytes, std::size_t n, std::array<char, 4> key) {
  std::uint64_t wide;
  std::array<char, 8> twice{key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]};
  std::memcpy(&wide, twice.data(), 8);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t w;
    std::memcpy(&w, bytes + i, 8);
    w ^= wide;
    std::memcpy(bytes + i, &w, 8);
  }
  for (; i < n; ++i) bytes[i] = static_cast<char>(bytes[i] ^ key[i % 4]);
}

/// Writes a binary message whose bytes are all in `message` as a single
/// frame, past Beast's write: the frame header is copied into the
/// coalescing stream and the message handed to it whole (no copy of the
/// records, no walk of a gather list: docs/benchmarks.md). A client's frame
/// is masked in place first (Beast's write masked a copy, which the stream
/// copied again). Nothing is taken from `message`, or masked, unless it is written.
template <class WebSocket>
boost::beast::error_code write_whole_message(WebSocket& ws, std::string& message, writer_role role) {
  if (!ws.is_open()) return boost::beast::websocket::error::closed;
  const bool masked = role == writer_role::client;
  std::array<char, 14> header{};
  std::size_t used = binary_frame_header(header, message.size(), masked);
  std::array<char, 4> key{};
  if (masked) {
    const std::uint32_t k = client_mask_key();
    std::memcpy(key.data(), &k, 4);
    std::memcpy(header.data() + used, key.data(), 4);
    used += 4;
  }
  auto& layer = ws.next_layer();
  if (!layer.append(std::string_view(header.data(), used))) return boost::asio::error::broken_pipe;
  if (masked) mask_in_place(message.data(), message.size(), key);
  layer.give(std::move(message));  // the stream takes it: it has not failed since the append
  return {};
}

/// Binary frames merged into one message stay under this (and a peer's
/// message limit is never lower: protocol.md); a larger frame goes alone.
constexpr std::size_t merged_message_bytes_max = 64 * 1024;

/// Writes binary frames as the records of one message: their heads must
/// carry `bytes` (record_head) whenever there is more than one. The records
/// go to Beast as one gather list, copied once, into the coalescing
/// stream's buffer. (Beast's asynchronous write walked such a list once per
/// chunk it wrote, which cost more than copying it first; the synchronous
/// one hands it to asio's write, which prepares 64 buffers at a time from
/// the start of the list, and copying first was no faster there:
/// docs/benchmarks.md.)
template <class WebSocket, class Frames>
boost::beast::error_code write_records(WebSocket& ws, const Frames& frames, std::vector<boost::asio::const_buffer>& parts) {
  parts.clear();
  for (const auto& f : frames) {
    parts.emplace_back(f.head.data(), f.head.size());
    if (!f.body.empty()) parts.emplace_back(f.body.data(), f.body.size());
  }
  ws.binary(true);
  boost::beast::error_code ec;
  ws.write(parts, ec);
  return ec;
}

/// Writes what `outbox` holds (frames derived from out_frame) into the
/// corked stream (coalescing_stream), then uncorks it: the whole burst is
/// one send. Nothing is written once the session's `attached` timer is no
/// longer this writer's `wake` (the outbox is another connection's then).
/// With `merge`, consecutive small binary frames go as one message of
/// several records. A failed write puts its frames back at the front of
/// the outbox and returns true.
template <class WebSocket, class Outbox>
bool write_burst(WebSocket& ws, Outbox& outbox, boost::asio::steady_timer* const& attached,
                 const boost::asio::steady_timer& wake, bool merge = false, writer_role role = writer_role::client) {
  auto small = [](const out_frame& f) {
    return f.binary && f.head.size() + f.body.size() < merged_message_bytes_max;
  };
  ws.next_layer().cork();
  std::vector<typename Outbox::value_type> batch;
  std::vector<boost::asio::const_buffer> parts;
  while (!outbox.empty() && attached == &wake) {
    batch.clear();
    std::size_t bytes = 0;
    do {
      bytes += outbox.front().head.size() + outbox.front().body.size();
      batch.push_back(std::move(outbox.front()));
      outbox.pop_front();
    } while (merge && small(batch.front()) && !outbox.empty() && small(outbox.front()) &&
             bytes + outbox.front().head.size() + outbox.front().body.size() <= merged_message_bytes_max);
    const auto& first = batch.front();
    const bool whole = batch.size() == 1 && first.binary && first.body.empty();
    const auto ec = whole              ? write_whole_message(ws, batch.front().head, role)
                    : batch.size() > 1 ? write_records(ws, batch, parts)
                                       : write_frame(ws, first);
    if (ec) {
      for (auto it = batch.rbegin(); it != batch.rend(); ++it) outbox.push_front(std::move(*it));
      ws.next_layer().uncork();
      return true;
    }
  }
  ws.next_layer().uncork();
  return false;
}

/// A connection's `write_now` (end_of_turn.hpp) for its session: the outbox
/// (a frame_outbox, whose records were merged as they were queued) written
/// at once; a failed write wakes the writer coroutine, which ends. The
/// session must clear it before the stream and timer go.
template <class WebSocket, class Session>
std::function<void()> write_now_for(WebSocket& ws, boost::asio::steady_timer& wake, Session& s) {
  return [&ws, &wake, &s] {
    if (write_burst(ws, s.outbox, s.writer.wake, wake, false, writer_role::server)) wake.cancel();
  };
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
