#include "drover/core/errc.hpp"

namespace drover::core {

const char* to_string(errc e) {
  switch (e) {
    case errc::ok: return "ok";
    case errc::queue_full: return "queue_full";
    case errc::unknown_queue: return "unknown_queue";
    case errc::unknown_task: return "unknown_task";
    case errc::unknown_consumer: return "unknown_consumer";
    case errc::stale_lease: return "stale_lease";
    case errc::invalid_transition: return "invalid_transition";
    case errc::invalid_argument: return "invalid_argument";
    case errc::already_terminal: return "already_terminal";
    case errc::payload_too_large: return "payload_too_large";
    case errc::shutting_down: return "shutting_down";
    case errc::cancelled: return "cancelled";
    case errc::handler_failed: return "handler_failed";
    case errc::timed_out: return "timed_out";
    case errc::consumer_lost: return "consumer_lost";
    case errc::expired: return "expired";
  }
  return "unknown_error";
}

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "drover"; }
  std::string message(int value) const override { return to_string(static_cast<errc>(value)); }
};
}  // namespace

const std::error_category& error_category() {
  static const category instance;
  return instance;
}

}  // namespace drover::core
