#include "drover/net/runtime_io.hpp"

#include <cassert>

namespace drover::net {

runtime_io::runtime_io() : keep_running_(io_.get_executor()), thread_([this] { io_.run(); }) {}

runtime_io::~runtime_io() {
  assert(std::this_thread::get_id() != thread_.get_id());
  keep_running_.reset();
  io_.stop();
  thread_.join();
  // io_ is destroyed next, and with it the coroutine frames still parked in it.
}

}  // namespace drover::net
