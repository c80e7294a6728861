#pragma once
// A stream layer under a Beast WebSocket that coalesces small writes: each
// write is appended to a buffer and completes at once; one flush at a time
// writes everything buffered with a single send. A burst of small frames
// (tasks, results, outcomes of ~100 bytes) then costs one system call
// instead of one each, and writes never overlap on the socket. A write of a
// large buffer with nothing pending goes straight to the socket (no copy of
// big payloads). A writer that drains an outbox corks the stream around it
// so the whole outbox leaves in one send. A buffer handed over whole
// (`give`: a message of records built for it) is sent from where it is, in
// the same send as the copied writes around it, not copied again. Memory
// stays bounded by the protocols' own windows: a runtime holds at most its
// capacity, a client channel at most its window; a few sent buffers (at
// most 4 of up to 256 KiB) are kept for the next copied writes.
//
// Reads: Beast reads a frame's first bytes into a 1536-byte buffer of its
// own and the rest of the payload into the message, so a message bigger
// than that took two receives (and a third to find the socket empty). Once
// a connection's receive has filled what it was given, a small read goes
// into a stash of `stash_bytes` instead, and the reads after it are served
// from there: one receive per burst. The stash is allocated for a receive
// and freed once read out, so a connection holds one only while bytes
// wait in it; one whose messages fit Beast's buffer (an idle runtime's
// keepalives, capacity-1 tasks) never uses it.
#include <array>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/append.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/system_error.hpp>

namespace drover::net {

namespace detail {
/// Completes a direct read, first noting whether it filled what it was
/// given (more was waiting: the next small reads go through the stash).
/// Its executor, allocator and cancellation slot are the inner handler's
/// (the associator at the end of this file).
template <class Handler, class State>
struct fill_noting_handler {
  Handler inner;
  std::shared_ptr<State> s;
  std::size_t asked;
  void operator()(boost::system::error_code ec, std::size_t n) {
    if (!ec && n == asked) s->bursty = true;
    std::move(inner)(ec, n);
  }
};
}  // namespace detail

template <class NextLayer>
class coalescing_stream {
 public:
  using executor_type = typename NextLayer::executor_type;
  /// Writes at least this big bypass the buffer when nothing is pending.
  static constexpr std::size_t direct_write_bytes = 64 * 1024;

  template <class... Args>
  explicit coalescing_stream(Args&&... args) : next_(std::forward<Args>(args)...) {}

  executor_type get_executor() noexcept { return next_.get_executor(); }

  /// While corked, writes only gather; `uncork` sends what gathered. A
  /// writer corks around draining its outbox so the whole burst is one send.
  void cork() { s_->corked = true; }
  void uncork() {
    s_->corked = false;
    if (!s_->busy && !s_->pending.empty() && !s_->failed) flush();
  }
  /// Appends `bytes` (as a synchronous write does); false once the stream failed.
  bool append(std::string_view bytes) {
    if (s_->failed) return false;
    gather(boost::asio::buffer(bytes.data(), bytes.size()));
    return true;
  }
  /// Appends `owned`'s bytes by taking the string (no copy); false once the
  /// stream failed, and then `owned` is left as it was.
  bool give(std::string&& owned) {
    if (s_->failed) return false;
    if (owned.empty()) return true;
    const bool was_empty = s_->pending.empty();
    s_->pending.push_back(std::move(owned));
    s_->copy_open = false;
    after_append(was_empty);
    return true;
  }
  NextLayer& next_layer() noexcept { return next_; }
  const NextLayer& next_layer() const noexcept { return next_; }

  /// A receive into the stash takes up to this much.
  static constexpr std::size_t stash_bytes = 64 * 1024;
  /// Reads asking for less than this may go through the stash.
  static constexpr std::size_t stash_read_max = 8 * 1024;

  template <class MutableBuffers, class Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const MutableBuffers& b) {
          const std::size_t asked = boost::asio::buffer_size(b);
          if (s_->stashed() || (s_->bursty && asked < stash_read_max)) {
            boost::asio::async_compose<decltype(h), void(boost::system::error_code, std::size_t)>(
                read_op<MutableBuffers>{this, s_, b}, h, next_);
            return;
          }
          // Straight into `b`, the usual case: the socket's operation with
          // a handler that notes a full read, and no composed operation
          // (its work tracking and layer of handler) around it.
          next_.async_read_some(b, detail::fill_noting_handler<decltype(h), state>{std::move(h), s_, asked});
        },
        handler, buffers);
  }

  /// A synchronous write only gathers (never blocks): the sessions' writers
  /// write whole messages this way into the corked stream, with no handler
  /// to post and resume per message (docs/benchmarks.md). Uncorked, the
  /// first gathered bytes of a turn post a flush, as an asynchronous write's do.
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, boost::system::error_code& ec) {
    if (s_->failed) {
      ec = s_->failed;
      return 0;
    }
    ec = {};
    return gather(buffers);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    boost::system::error_code ec;
    const std::size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  // Beast's synchronous WebSocket writes ask for a whole synchronous stream;
  // nothing here reads synchronously, but the next layer can.
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, boost::system::error_code& ec) {
    if (s_->stashed()) {
      ec = {};
      return s_->take_stashed(buffers);
    }
    return next_.read_some(buffers, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    if (s_->stashed()) return s_->take_stashed(buffers);
    return next_.read_some(buffers);
  }

  template <class ConstBuffers, class Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    return boost::asio::async_initiate<Handler, void(boost::system::error_code, std::size_t)>(
        [this](auto h, const ConstBuffers& b) { write(b, std::move(h)); }, handler, buffers);
  }

 private:
  /// Shared with in-flight sends, which may complete after the stream is gone.
  struct state {
    /// Bytes to send, in order: buffers copied writes fill, and buffers
    /// given whole. `copy_open`: the last one takes more copied bytes.
    std::vector<std::string> pending, sending;
    std::vector<boost::asio::const_buffer> parts;  // the send's list over `sending`
    std::vector<std::string> spare;                 // sent buffers kept for copied writes
    bool copy_open = false;
    bool busy = false;  // a send is in flight
    bool corked = false;
    bool alive = true;
    boost::system::error_code failed;

    /// Received bytes not read yet: [stash_pos, stash_end) of `stash`.
    std::unique_ptr<char[]> stash;
    std::size_t stash_pos = 0, stash_end = 0;
    /// A receive once filled the buffer it was given: more was waiting,
    /// so the messages are bigger than Beast's first read.
    bool bursty = false;

    bool stashed() const { return stash_pos < stash_end; }
    /// The stash is freed as soon as it is read out: a quiet connection
    /// holds none, whatever it once received.
    template <class MutableBuffers>
    std::size_t take_stashed(const MutableBuffers& buffers) {
      const std::size_t n =
          boost::asio::buffer_copy(buffers, boost::asio::buffer(stash.get() + stash_pos, stash_end - stash_pos));
      stash_pos += n;
      if (!stashed()) stash.reset();
      return n;
    }
  };

  /// One async_read_some: from the stash (completing through the executor,
  /// never inside the call), into the stash, or straight into `buffers`.
  template <class MutableBuffers>
  struct read_op {
    coalescing_stream* stream;
    std::shared_ptr<state> s;
    MutableBuffers buffers;
    enum class step { start, served, direct, stashing } at = step::start;
    std::size_t served = 0;

    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
      switch (at) {
        case step::start:
          if (s->stashed()) {
            served = s->take_stashed(buffers);
            at = step::served;
            return boost::asio::post(stream->get_executor(), std::move(self));
          }
          if (s->bursty && boost::asio::buffer_size(buffers) < stash_read_max) {
            s->stash = std::make_unique_for_overwrite<char[]>(stash_bytes);
            at = step::stashing;
            return stream->next_.async_read_some(boost::asio::buffer(s->stash.get(), stash_bytes), std::move(self));
          }
          at = step::direct;
          return stream->next_.async_read_some(buffers, std::move(self));
        case step::served:
          return self.complete(ec, served);
        case step::direct:
          if (!ec && n == boost::asio::buffer_size(buffers)) s->bursty = true;
          return self.complete(ec, n);
        case step::stashing: {
          s->stash_pos = 0;
          s->stash_end = ec ? 0 : n;
          const std::size_t given = s->take_stashed(buffers);
          return self.complete(ec, given);
        }
      }
    }
  };

  template <class ConstBuffers, class Handler>
  void write(const ConstBuffers& buffers, Handler handler) {
    const std::size_t n = boost::asio::buffer_size(buffers);
    if (s_->failed) {
      boost::asio::post(get_executor(), boost::asio::append(std::move(handler), s_->failed, std::size_t{0}));
      return;
    }
    if (n >= direct_write_bytes && !s_->busy && s_->pending.empty() && !s_->corked) {
      s_->busy = true;  // later small writes wait in `pending`
      boost::asio::async_write(next_, buffers,
                               [s = s_, this, h = std::move(handler)](boost::system::error_code ec, std::size_t sent) mutable {
                                 s->busy = false;
                                 if (ec) s->failed = ec;
                                 if (s->alive && !ec && !s->pending.empty() && !s->corked) flush();
                                 std::move(h)(ec, sent);
                               });
      return;
    }
    gather(buffers);
    boost::asio::post(get_executor(), boost::asio::append(std::move(handler), boost::system::error_code{}, n));
  }

  template <class ConstBuffers>
  std::size_t gather(const ConstBuffers& buffers) {
    const std::size_t n = boost::asio::buffer_size(buffers);
    if (n == 0) return 0;
    const bool was_empty = s_->pending.empty();
    if (!s_->copy_open) {
      s_->pending.push_back(take_spare());
      s_->copy_open = true;
    }
    auto& to = s_->pending.back();
    const std::size_t old = to.size();
    to.resize(old + n);
    boost::asio::buffer_copy(boost::asio::buffer(to.data() + old, n), buffers);
    after_append(was_empty);
    return n;
  }

  void after_append(bool was_empty) {
    if (!s_->busy && was_empty && !s_->corked) {
      // Posted, so that the other writes of this turn join the same send.
      boost::asio::post(get_executor(), [s = s_, this] {
        if (s->alive && !s->busy && !s->pending.empty() && !s->failed && !s->corked) flush();
      });
    }
  }

  std::string take_spare() {
    if (s_->spare.empty()) return {};
    auto b = std::move(s_->spare.back());
    s_->spare.pop_back();
    return b;
  }

  /// The buffers of a finished send: a few kept (emptied) for copied writes.
  static void keep_spares(state& s) {
    constexpr std::size_t spares_max = 4, spare_bytes_max = 256 * 1024;
    for (auto& b : s.sending)
      if (s.spare.size() < spares_max && b.capacity() <= spare_bytes_max) {
        b.clear();
        s.spare.push_back(std::move(b));
      }
    s.sending.clear();
  }

  /// Sends what `sending` holds at once, without waiting: the bytes the
  /// socket took, or an error (would_block when it took none).
  std::size_t send_now(boost::system::error_code& ec) {
    constexpr std::size_t iov_max = 64;
    std::array<iovec, iov_max> iov;
    std::size_t count = 0;
    for (const auto& b : s_->sending) {
      if (count == iov_max) break;
      iov[count++] = iovec{const_cast<char*>(b.data()), b.size()};
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    const ssize_t n = ::sendmsg(next_.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return static_cast<std::size_t>(n);
    ec = (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
             ? make_error_code(boost::asio::error::would_block)
             : boost::system::error_code(errno, boost::system::system_category());
    return 0;
  }

  void flush() {
    s_->busy = true;
    s_->sending.swap(s_->pending);
    s_->copy_open = false;
    // Most sends fit in the socket's buffer: made here, with no operation
    // started, posted and completed (for a message of one task that cost
    // more than the send). What the socket did not take goes asynchronously.
    std::size_t total = 0;
    for (const auto& b : s_->sending) total += b.size();
    boost::system::error_code now_ec;
    std::size_t sent = send_now(now_ec);
    if (now_ec != boost::asio::error::would_block && (now_ec || sent == total)) {
      s_->busy = false;
      keep_spares(*s_);
      if (now_ec) s_->failed = now_ec;
      return;
    }
    s_->parts.clear();
    for (const auto& b : s_->sending) {
      if (sent >= b.size()) {
        sent -= b.size();
        continue;
      }
      s_->parts.emplace_back(b.data() + sent, b.size() - sent);
      sent = 0;
    }
    boost::asio::async_write(next_, s_->parts, [s = s_, this](boost::system::error_code ec, std::size_t) {
      s->busy = false;
      keep_spares(*s);
      if (ec) {
        s->failed = ec;
        return;
      }
      if (s->alive && !s->pending.empty() && !s->corked) flush();
    });
  }

 public:
  ~coalescing_stream() { s_->alive = false; }

 private:
  NextLayer next_;
  std::shared_ptr<state> s_ = std::make_shared<state>();
};

template <class NextLayer>
void teardown(boost::beast::role_type role, coalescing_stream<NextLayer>& stream, boost::system::error_code& ec) {
  using boost::beast::websocket::teardown;
  teardown(role, stream.next_layer(), ec);
}

/// The closing handshake's end over a TCP socket: shut down sending, read
/// (and drop) what the peer still sends until it closes, at most
/// `teardown_drain_bytes` or `teardown_drain_time`, then close. Beast's own
/// TCP teardown stops after one 2 KiB read (the byte count it checks is
/// never updated), so a peer still sending - one whose message was too big -
/// got a reset, often before it could read the close frame with 1009 that
/// told it why.
constexpr std::size_t teardown_drain_bytes = 4 << 20;
constexpr std::chrono::seconds teardown_drain_time{2};

template <class Socket>
struct drain_teardown_op {
  Socket& socket;
  boost::beast::role_type role;
  std::unique_ptr<std::array<char, 8192>> buffer = std::make_unique<std::array<char, 8192>>();
  /// Closes the socket when the drain runs out of time (its pending read
  /// then fails); shared with that wait, which may end after the op.
  struct deadline {
    boost::asio::steady_timer timer;
    bool over = false;
    explicit deadline(const typename Socket::executor_type& ex) : timer(ex) {}
  };
  std::shared_ptr<deadline> limit;
  std::size_t drained = 0;

  template <class Self>
  void operator()(Self& self, boost::system::error_code ec = {}, std::size_t n = 0) {
    namespace asio = boost::asio;
    boost::system::error_code ignored;
    if (!limit) {
      if (role == boost::beast::role_type::server) socket.shutdown(asio::socket_base::shutdown_send, ignored);
      limit = std::make_shared<deadline>(socket.get_executor());
      limit->timer.expires_after(teardown_drain_time);
      limit->timer.async_wait([l = limit, s = &socket](boost::system::error_code wec) {
        boost::system::error_code ignore;
        if (!wec && !l->over) s->close(ignore);
      });
      return socket.async_read_some(asio::buffer(*buffer), std::move(self));
    }
    drained += n;
    if (!ec && drained < teardown_drain_bytes) return socket.async_read_some(asio::buffer(*buffer), std::move(self));
    limit->over = true;
    limit->timer.cancel();
    if (role == boost::beast::role_type::client) socket.shutdown(asio::socket_base::shutdown_send, ignored);
    socket.close(ignored);
    // The peer closing is how a teardown should end; running out of time or
    // bytes is not an error worth reporting either: the socket is closed.
    self.complete(boost::system::error_code{});
  }
};

template <class NextLayer, class TeardownHandler>
void async_teardown(boost::beast::role_type role, coalescing_stream<NextLayer>& stream, TeardownHandler&& handler) {
  boost::asio::async_compose<TeardownHandler, void(boost::system::error_code)>(
      drain_teardown_op<NextLayer>{stream.next_layer(), role}, handler, stream.next_layer());
}

}  // namespace drover::net

namespace boost::asio {

template <template <typename, typename> class Associator, class Handler, class State, class DefaultCandidate>
struct associator<Associator, drover::net::detail::fill_noting_handler<Handler, State>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
  static typename Associator<Handler, DefaultCandidate>::type get(
      const drover::net::detail::fill_noting_handler<Handler, State>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.inner);
  }
  static auto get(const drover::net::detail::fill_noting_handler<Handler, State>& h, const DefaultCandidate& c) noexcept
      -> decltype(Associator<Handler, DefaultCandidate>::get(h.inner, c)) {
    return Associator<Handler, DefaultCandidate>::get(h.inner, c);
  }
};

}  // namespace boost::asio
