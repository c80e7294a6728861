#pragma once
// A hint from the gateway's sessions to its I/O loop (gateway.cpp, run_io):
// this turn handed the broker work whose answer comes back to this thread
// (a submit, demand, results), so the loop polls a little before it sleeps.
// Anything else (a ping, an idle timer) lets it sleep at once.
#include <cstddef>

namespace drover::net {

inline thread_local bool broker_reply_expected = false;

inline void expect_broker_reply() { broker_reply_expected = true; }

/// Tasks submitted on this thread since its loop last looked: the rate that
/// decides how long the loop spins (gateway_config::io_quiet_spin).
inline thread_local std::size_t submits_seen = 0;

inline void note_submits(std::size_t n) { submits_seen += n; }

}  // namespace drover::net
