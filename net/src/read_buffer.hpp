#pragma once
// The buffer each WebSocket session (runtime sessions, client sessions, the
// runtime client) reads its next message into.
#include <algorithm>
#include <cstddef>
#include <string>

namespace drover::net {

class read_buffers {
 public:
  /// Room for the next message: as much as the last one took (up to 64
  /// KiB), so that a steady stream of batches is read into a buffer
  /// allocated once instead of one grown (and copied) in steps.
  std::string next() const {
    std::string message;
    message.reserve(std::min<std::size_t>(last_size_, 64 * 1024));
    return message;
  }

  /// After a read. A message is kept as long as any task's payload in it
  /// lives, so a small one in a big buffer (after a big one, or grown past
  /// its size) is moved into one of its size: no more than twice what it
  /// holds, plus a page.
  void fit(std::string& message) {
    last_size_ = message.size();
    if (message.capacity() > 2 * message.size() + 4096) message.shrink_to_fit();
  }

 private:
  std::size_t last_size_ = 0;
};

}  // namespace drover::net
