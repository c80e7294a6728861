#pragma once
// A loopback TCP proxy for fault tests: forwards every connection to a
// target port and can sever all of them at once (as a crashed peer or a
// broken network would: no WebSocket close, just a dead socket), or stop
// accepting so that reconnects fail.
#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace drover::test_support {

class tcp_proxy {
 public:
  explicit tcp_proxy(std::uint16_t target) : target_(target) {
    namespace asio = boost::asio;
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~tcp_proxy() {
    io_.stop();
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Resets every open connection (both sides see the connection die).
  void sever() {
    run_here([this] {
      for (auto& w : pipes_)
        if (auto p = w.lock()) p->reset();
      pipes_.clear();
    });
  }
  /// New connections are refused (accepted and reset at once) while false.
  void set_accepting(bool on) { accepting_ = on; }
  /// While frozen, bytes are read and dropped in both directions: the peers
  /// see a live TCP connection that carries nothing (a hung process, a
  /// black-holing network), until thawed.
  void set_frozen(bool on) { frozen_ = on; }
  /// Connections the target has ended (closed or reset its side), frozen or not.
  int target_ends() const { return target_ends_; }

 private:
  using socket = boost::asio::ip::tcp::socket;
  struct pipe : std::enable_shared_from_this<pipe> {
    socket a, b;
    std::array<char, 16384> ab{}, ba{};
    const std::atomic<bool>& frozen;
    std::atomic<int>& target_ends;
    pipe(socket s, const std::atomic<bool>& f, std::atomic<int>& ends)
        : a(std::move(s)), b(a.get_executor()), frozen(f), target_ends(ends) {}
    void reset() {
      boost::system::error_code ec;
      // SO_LINGER 0: close sends RST, like a killed process's socket.
      a.set_option(boost::asio::socket_base::linger(true, 0), ec);
      b.set_option(boost::asio::socket_base::linger(true, 0), ec);
      a.close(ec);
      b.close(ec);
    }
    void pump(socket& from, socket& to, std::array<char, 16384>& buf) {
      from.async_read_some(boost::asio::buffer(buf), [self = shared_from_this(), &from, &to, &buf](auto ec, std::size_t n) {
        if (ec && ec != boost::asio::error::operation_aborted && &from == &self->b) ++self->target_ends;
        if (ec && self->frozen) return;  // a hung peer tells nothing, not even that the other side left
        if (ec) return self->reset();
        if (self->frozen) return self->pump(from, to, buf);  // dropped
        boost::asio::async_write(to, boost::asio::buffer(buf.data(), n), [self, &from, &to, &buf](auto wec, std::size_t) {
          if (wec) return self->reset();
          self->pump(from, to, buf);
        });
      });
    }
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, socket s) {
      if (ec) return;
      if (!accepting_) {
        boost::system::error_code ignored;
        s.set_option(boost::asio::socket_base::linger(true, 0), ignored);
        s.close(ignored);
      } else {
        auto p = std::make_shared<pipe>(std::move(s), frozen_, target_ends_);
        boost::system::error_code cec;
        p->b.connect({boost::asio::ip::make_address("127.0.0.1"), target_}, cec);
        if (!cec) {
          pipes_.push_back(p);
          p->pump(p->a, p->b, p->ab);
          p->pump(p->b, p->a, p->ba);
        }
      }
      accept();
    });
  }

  template <class F>
  void run_here(F f) {
    std::atomic<bool> done{false};
    boost::asio::post(io_, [&] {
      f();
      done = true;
    });
    while (!done) std::this_thread::yield();
  }

  std::uint16_t target_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  std::vector<std::weak_ptr<pipe>> pipes_;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> frozen_{false};
  std::atomic<int> target_ends_{0};
  std::thread thread_;
};

}  // namespace drover::test_support
