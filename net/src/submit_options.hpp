#pragma once
// The numeric submit options every client protocol accepts (priority,
// max_attempts, timeout_ms, delay_ms, ttl_ms), read through one function
// whatever carries them (a query string, a JSON header).
#include <chrono>
#include <cstdint>
#include <optional>

#include "drover/core/task_spec.hpp"
#include "drover/net/compact_header.hpp"
#include "drover/net/record_header.hpp"

namespace drover::net {

/// `number(key, max, out)` stores the option `key` (a record_key: its name,
/// and its code for a record header's lookup) (0..max) in `out` and returns
/// true, leaves `out` alone when the option is absent, or returns false
/// (having recorded why) when it is malformed.
/// The options a submit may carry, named once: read_submit_options reads
/// the numeric ones, and a record header reader skips all of them at once
/// when none is there (`submit_option_codes`).
namespace submit_option {
inline constexpr record_key priority = "priority", max_attempts = "max_attempts", timeout_ms = "timeout_ms",
                           delay_ms = "delay_ms", ttl_ms = "ttl_ms", idempotency_key = "idempotency_key";
}  // namespace submit_option

/// A bit (1 << code) per option of `submit_option`, every one in the compact table.
inline constexpr std::uint32_t submit_option_codes = [] {
  std::uint32_t codes = 0;
  for (const record_key& k : {submit_option::priority, submit_option::max_attempts, submit_option::timeout_ms,
                              submit_option::delay_ms, submit_option::ttl_ms, submit_option::idempotency_key}) {
    if (k.code == 0) throw "a submit option missing from the compact key table";
    codes |= record_header::code_bit(k);
  }
  return codes;
}();

template <class Number>
std::optional<core::task_options> read_submit_options(Number&& number) {
  namespace opt = submit_option;
  core::task_options o;
  std::uint64_t priority = o.priority, attempts = o.max_attempts, timeout_ms = 0, delay_ms = 0, ttl_ms = 0;
  if (!number(opt::priority, core::priority_max, priority) || !number(opt::max_attempts, core::attempts_max, attempts) ||
      !number(opt::timeout_ms, UINT32_MAX, timeout_ms) || !number(opt::delay_ms, UINT32_MAX, delay_ms) ||
      !number(opt::ttl_ms, UINT32_MAX, ttl_ms))
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
