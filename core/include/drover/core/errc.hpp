#pragma once
// Error codes of the scheduler, and the error value that carries one with a
// human-readable message. Errors cross actor boundaries as values.
#include <cstdint>
#include <string>
#include <system_error>

namespace drover::core {

enum class errc : std::uint8_t {
  ok = 0,
  queue_full,          // the node holds its maximum of queued tasks or bytes
  unknown_queue,       // no consumer or handler was ever declared for the queue
  unknown_task,        // no live task has this id
  unknown_consumer,    // the consumer never joined or already left
  stale_lease,         // a result for a lease that is not the task's current one
  invalid_transition,  // the lifecycle forbids this state change
  invalid_argument,    // an option is out of its documented range
  already_terminal,    // the task already has its outcome
  payload_too_large,   // the payload exceeds the configured maximum
  shutting_down,       // the node no longer accepts work
  cancelled,           // the task was cancelled
  handler_failed,      // the handler reported a failure or threw
  timed_out,           // an attempt ran past its timeout
  consumer_lost,       // the consumer holding the lease went away
  expired,             // the task was not started before its time to live
};

const std::error_category& error_category();
inline std::error_code make_error_code(errc e) { return {static_cast<int>(e), error_category()}; }
const char* to_string(errc e);

/// An error value: a code to branch on and a message for people.
struct error {
  errc code = errc::ok;
  std::string message;

  explicit operator bool() const { return code != errc::ok; }
  friend bool operator==(const error& a, const error& b) { return a.code == b.code; }
};

inline error make_error(errc code, std::string message) { return error{code, std::move(message)}; }

}  // namespace drover::core

template <>
struct std::is_error_code_enum<drover::core::errc> : std::true_type {};
