#pragma once
// How often each fault happens in a simulated run. Every draw comes from
// the run's seed, so a profile and a seed fix the whole run.
#include <optional>
#include <string>
#include <string_view>

namespace drover::sim {

struct fault_profile {
  std::string name = "default";
  // Runtime links (each message, either direction).
  double delay = 0.3;         // extra delay, up to max_delay_ms (delays also reorder)
  int max_delay_ms = 40;
  double duplicate = 0.02;    // the message arrives twice
  double loss = 0.003;        // the message is lost: the connection drops (TCP semantics)
  // Per runtime, per second of virtual time.
  double partition = 0.02;    // cut off from the node for 0.2-4 s
  double crash = 0.02;        // the runtime process dies; restarts after 0.1-5 s
  // Per task attempt.
  double handler_failure = 0.08;  // reports a retryable failure
  double handler_hang = 0.02;     // never answers (the lease expires)
  double handler_slow = 0.03;     // answers after its lease ran out
  // The node.
  double limit_change = 0.3;  // per second: the pool's work limit set anew (1-8)
  // Workload.
  double cancel = 0.03;       // per submitted task: a cancel sent later (racing its completion)
  double burst = 0.01;        // per submit event: a burst of 150 submits (queue-full backpressure)

  /// "none", "default", "harsh"; nothing for an unknown name.
  static std::optional<fault_profile> named(std::string_view name);

  /// Sets one fault by its field name (`loss`, `crash`, `max_delay_ms`, ...):
  /// false for an unknown name or a value out of range (probabilities and
  /// rates 0 to 1, except limit_change 0 to 100; max_delay_ms 0 to 60,000).
  bool set(std::string_view key, double value);
};

}  // namespace drover::sim
