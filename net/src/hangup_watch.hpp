#pragma once
// Tells when an HTTP peer that waits for an answer goes away. A long-poll
// claim or an SSE runtime sends nothing while it waits, so its socket
// turning readable means the peer closed or reset the connection; the node
// would otherwise learn it only when it next writes (a claim's wait_ms, or
// an SSE keepalive 15 s later), and hold a killed runtime's tasks that long
// before its session could even start its idle time. Data instead (a
// pipelined request) is left for the connection's next read.
#include <cerrno>
#include <functional>
#include <memory>
#include <utility>

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>

namespace drover::net {

/// Whether the peer of a socket that expects no data from it has closed or
/// reset the connection, without reading anything (a pipelined request stays).
inline bool peer_gone(int fd) {
  char byte;
  const auto n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

class hangup_watch {
 public:
  /// Calls `on_hangup` once, on the socket's thread, if the peer closes the
  /// connection while this watch lives; never after it is gone. `on_hangup`
  /// wakes whatever waits; hung_up() then says why it woke.
  hangup_watch(boost::asio::ip::tcp::socket& socket, std::function<void()> on_hangup)
      : state_(std::make_shared<state>()) {
    const int fd = socket.native_handle();
    socket.async_wait(boost::asio::ip::tcp::socket::wait_read,
                      [st = state_, fd, on_hangup = std::move(on_hangup)](const boost::system::error_code& ec) {
                        if (!st->alive || ec) return;  // over, or the socket closed under it
                        if (peer_gone(fd)) {
                          st->hung_up = true;
                          on_hangup();
                        }
                      });
  }
  ~hangup_watch() { state_->alive = false; }
  hangup_watch(const hangup_watch&) = delete;
  hangup_watch& operator=(const hangup_watch&) = delete;

  /// Whether the peer has gone.
  bool hung_up() const { return state_->hung_up; }

 private:
  struct state {
    bool alive = true;
    bool hung_up = false;
  };
  std::shared_ptr<state> state_;
};

}  // namespace drover::net
