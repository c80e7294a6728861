#pragma once
// The buffer each WebSocket session (runtime sessions, client sessions, the
// runtime client) reads its next message into.
#include <algorithm>
#include <cstddef>
#include <string>

namespace drover::net {

/// Room for the next message read on a connection: as much as the last
/// one took (up to 64 KiB), so that a steady stream of batches is read
/// into a buffer allocated once instead of one grown (and copied) in steps.
inline std::string next_read_buffer(std::size_t last_size) {
  std::string message;
  message.reserve(std::min<std::size_t>(last_size, 64 * 1024));
  return message;
}

/// A message read is kept as long as any task's payload in it lives, so a
/// small one in a big buffer (after a big one, or grown past its size) is
/// moved into one of its size: no more than twice what it holds, plus a page.
inline void fit_read_buffer(std::string& message) {
  if (message.capacity() > 2 * message.size() + 4096) message.shrink_to_fit();
}

}  // namespace drover::net
