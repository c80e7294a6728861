#pragma once
// A hint from the gateway's sessions to its I/O loop (gateway.cpp, run_io):
// this turn handed the broker work whose answer comes back to this thread
// (a submit, demand, results), so the loop polls a little before it sleeps.
// Anything else (a ping, an idle timer) lets it sleep at once.
namespace drover::net {

inline thread_local bool broker_reply_expected = false;

inline void expect_broker_reply() { broker_reply_expected = true; }

}  // namespace drover::net
