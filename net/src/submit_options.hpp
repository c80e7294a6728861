#pragma once
// The numeric submit options every client protocol accepts (priority,
// max_attempts, timeout_ms, delay_ms, ttl_ms), read through one function
// whatever carries them (a query string, a JSON header).
#include <chrono>
#include <cstdint>
#include <optional>

#include "drover/core/task_spec.hpp"
#include "drover/net/compact_header.hpp"

namespace drover::net {

/// `number(key, max, out)` stores the option `key` (a record_key: its name,
/// and its code for a record header's lookup) (0..max) in `out` and returns
/// true, leaves `out` alone when the option is absent, or returns false
/// (having recorded why) when it is malformed.
template <class Number>
std::optional<core::task_options> read_submit_options(Number&& number) {
  core::task_options o;
  std::uint64_t priority = o.priority, attempts = o.max_attempts, timeout_ms = 0, delay_ms = 0, ttl_ms = 0;
  if (!number("priority", core::priority_max, priority) || !number("max_attempts", core::attempts_max, attempts) ||
      !number("timeout_ms", UINT32_MAX, timeout_ms) || !number("delay_ms", UINT32_MAX, delay_ms) ||
      !number("ttl_ms", UINT32_MAX, ttl_ms))
    return std::nullopt;
  o.priority = static_cast<decltype(o.priority)>(priority);
  o.max_attempts = static_cast<decltype(o.max_attempts)>(attempts);
  o.timeout = std::chrono::milliseconds(timeout_ms);
  o.ttl = std::chrono::milliseconds(ttl_ms);
  if (delay_ms > 0)
    o.not_before = core::time_point{std::chrono::duration_cast<core::duration>(
        (std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms)).time_since_epoch())};
  return o;
}

}  // namespace drover::net
