#pragma once
// What a submitter hands in: the queue, the payload, and the options.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "drover/core/backoff.hpp"
#include "drover/core/bytes.hpp"
#include "drover/core/result.hpp"
#include "drover/core/time.hpp"

namespace drover::core {

/// Small key/value annotations carried with a task (trace ids, tenant...).
using meta_map = std::vector<std::pair<std::string, std::string>>;

constexpr std::uint32_t priority_max = 255;
constexpr std::uint32_t attempts_max = 1000;
/// A task's timeout is kept in milliseconds in 32 bits.
constexpr auto timeout_max = std::chrono::milliseconds(UINT32_MAX);

struct task_options {
  /// Higher runs first; FIFO within one priority. 0..priority_max.
  std::uint8_t priority = 0;
  /// Attempts before the task is dead-lettered; 0 = the broker's default.
  std::uint16_t max_attempts = 0;
  /// Backoff between attempts; unset = the broker's default.
  std::optional<backoff_policy> backoff;
  /// Longest one attempt may run before its lease expires; 0 = default.
  duration timeout{0};
  /// Not dispatched before this time (delayed task); unset = at once.
  std::optional<time_point> not_before;
  /// Expires (terminal) if not dispatched within this time of submission; 0 = never.
  duration ttl{0};
  /// A second submit with the same key on the same queue returns the first task.
  std::string idempotency_key;
  meta_map meta;
};

struct task_spec {
  std::string queue;
  bytes payload;
  task_options options;
};

/// Checks the options against their documented ranges and the payload
/// against `payload_bytes_max` (errc::invalid_argument / payload_too_large).
result<void> validate(const task_spec& spec, std::size_t payload_bytes_max);

}  // namespace drover::core
