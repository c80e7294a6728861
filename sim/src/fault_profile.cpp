#include "drover/sim/fault_profile.hpp"

namespace drover::sim {

std::optional<fault_profile> fault_profile::named(std::string_view name) {
  fault_profile p;
  if (name == "default") return p;
  if (name == "none") {
    p.name = "none";
    p.delay = p.duplicate = p.loss = p.partition = p.crash = 0;
    p.handler_failure = p.handler_hang = p.handler_slow = p.cancel = p.burst = p.limit_change = 0;
    return p;
  }
  if (name == "harsh") {
    p.name = "harsh";
    p.delay = 0.6, p.max_delay_ms = 200, p.duplicate = 0.1, p.loss = 0.02;
    p.partition = 0.1, p.crash = 0.1;
    p.handler_failure = 0.2, p.handler_hang = 0.05, p.handler_slow = 0.1;
    p.cancel = 0.1, p.burst = 0.03, p.limit_change = 1.0;
    return p;
  }
  return std::nullopt;
}

bool fault_profile::set(std::string_view key, double value) {
  if (key == "max_delay_ms") {
    if (value < 0 || value > 60'000) return false;
    max_delay_ms = static_cast<int>(value);
    return true;
  }
  const std::pair<std::string_view, double*> fields[] = {
      {"delay", &delay},           {"duplicate", &duplicate},       {"loss", &loss},
      {"partition", &partition},   {"crash", &crash},               {"handler_failure", &handler_failure},
      {"handler_hang", &handler_hang}, {"handler_slow", &handler_slow}, {"limit_change", &limit_change},
      {"cancel", &cancel},         {"burst", &burst}};
  for (const auto& [name, field] : fields) {
    if (name != key) continue;
    if (value < 0 || value > (key == "limit_change" ? 100.0 : 1.0)) return false;
    *field = value;
    return true;
  }
  return false;
}

}  // namespace drover::sim
