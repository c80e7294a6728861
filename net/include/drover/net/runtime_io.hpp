#pragma once
// One I/O thread for runtime clients to share. A process holding many
// connections to a node (a runtime serving thousands of capacity-1 slots,
// say) runs them all on one thread instead of one thread each: their
// handlers run there too, so handlers must not block.
#include <memory>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace drover::net {

class runtime_io {
 public:
  /// Starts the thread; it runs until the last holder lets go.
  static std::shared_ptr<runtime_io> start() { return std::shared_ptr<runtime_io>(new runtime_io()); }
  /// Stops the thread and destroys what still runs on it (handlers that
  /// ignored their cancellation). Must not be the I/O thread itself.
  ~runtime_io();
  runtime_io(const runtime_io&) = delete;
  runtime_io& operator=(const runtime_io&) = delete;

  boost::asio::io_context& context() { return io_; }

 private:
  runtime_io();
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> keep_running_;
  std::thread thread_;
};

}  // namespace drover::net
