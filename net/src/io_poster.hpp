#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <mutex>

namespace drover::net {

/// Posts to an I/O executor until closed; afterwards posts are dropped.
class io_poster {
 public:
  explicit io_poster(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}
  template <class F>
  void post(F&& f) {
    std::lock_guard lock(mutex_);
    if (open_) boost::asio::post(ex_, std::forward<F>(f));
  }
  /// Runs `f` here and now unless closed: what it touches of the gateway is
  /// alive, since closing waits for it (the gateway closes before it goes).
  template <class F>
  void run_if_open(F&& f) {
    std::lock_guard lock(mutex_);
    if (open_) f();
  }
  void close() {
    std::lock_guard lock(mutex_);
    open_ = false;
  }

 private:
  std::mutex mutex_;
  boost::asio::any_io_executor ex_;
  bool open_ = true;
};

}  // namespace drover::net
