// Whole simulated runs: deterministic by seed, and failing loudly when the
// node misbehaves.
#include "drover/sim/world.hpp"

#include <gtest/gtest.h>

using namespace drover::sim;

namespace {

sim_options seed(std::uint64_t s, std::uint64_t steps = 4000) {
  sim_options o;
  o.seed = s;
  o.steps = steps;
  return o;
}

/// Some seed in 1..`seeds` fails with `invariant` when `inject` breaks the
/// node, and passes without it (so the failure is the injected bug's).
void expect_a_seed_caught(const char* inject, const char* profile, std::uint64_t seeds, const char* invariant) {
  for (std::uint64_t s = 1; s <= seeds; ++s) {
    auto o = seed(s, 20000);
    o.faults = *fault_profile::named(profile);
    o.inject = inject;
    const auto broken = run(o);
    if (broken.ok()) continue;
    EXPECT_EQ(broken.failure->invariant, invariant) << "seed " << s << ": " << broken.failure->detail;
    o.inject.clear();
    EXPECT_TRUE(run(o).ok()) << "seed " << s << " fails without the injected bug too";
    return;
  }
  ADD_FAILURE() << "no seed in 1.." << seeds << " caught " << inject;
}

}  // namespace

TEST(sim_world, the_same_seed_gives_the_same_trace_byte_for_byte) {
  auto o = seed(42);
  o.keep_trace = true;
  const auto a = run(o), b = run(o);
  ASSERT_TRUE(a.ok()) << a.failure->detail;
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.trace_lines, b.trace_lines);
  EXPECT_GT(a.events, 1000u);
}

TEST(sim_world, different_seeds_give_different_runs) {
  EXPECT_NE(run(seed(1)).trace_hash, run(seed(2)).trace_hash);
}

TEST(sim_world, every_accepted_task_ends_and_faults_fire) {
  const auto r = run(seed(7, 20000));
  ASSERT_TRUE(r.ok()) << r.failure->invariant << ": " << r.failure->detail;
  EXPECT_GT(r.accepted, 100u);
  EXPECT_EQ(r.ended, r.accepted);
  EXPECT_GT(r.rejected, 0u) << "bursts hit queue_full";
  for (const char* fault : {"delay", "duplicate", "loss", "handler_failure", "handler_hang", "handler_slow", "cancel", "burst",
                            "resume", "limit_change", "handler_throw"})
    EXPECT_GT(r.faults_fired.count(fault) ? r.faults_fired.at(fault) : 0, 0u) << fault;
}

TEST(sim_world, without_faults_nothing_is_injected) {
  auto o = seed(3);
  o.faults = *fault_profile::named("none");
  const auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_TRUE(r.faults_fired.empty());
}

TEST(sim_world, a_node_that_loses_an_outcome_fails_the_seed_as_a_lost_task) {
  auto o = seed(5);
  o.inject = "forget_outcome";
  const auto r = run(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.failure->invariant, "lost_task");
}

TEST(sim_world, an_unknown_profile_is_refused) { EXPECT_FALSE(fault_profile::named("gentle")); }

// Seeds that once failed, kept as regression tests (docs/simulation.md,
// "What the simulator found"): each must pass, and must still exercise what
// made it fail.
TEST(sim_regressions, seeds_that_found_bugs_pass) {
  struct found {
    std::uint64_t seed;
    const char* profile;
    const char* fault;  // what the failure needed
  };
  for (const auto& f : {found{13, "default", "resume"},       // resume did not count resent tasks in granted
                        found{1, "default", "resume"},        // model: held leases forgotten on a new connection
                        found{90, "default", "resume"},       // model: resent task re-run while its report was queued
                        found{11, "default", "resume"},       // model: cancel of an unsent report's lease
                        found{3, "default", "duplicate"},     // model: duplicated delivery run twice
                        found{85, "harsh", "duplicate"}}) {  // model: cancel that overtook its task
    auto o = seed(f.seed, 20000);
    o.faults = *fault_profile::named(f.profile);
    const auto r = run(o);
    EXPECT_TRUE(r.ok()) << "seed " << f.seed << ": " << (r.failure ? r.failure->detail : "");
    EXPECT_GT(r.faults_fired.count(f.fault) ? r.faults_fired.at(f.fault) : 0, 0u) << "seed " << f.seed;
  }
}

TEST(sim_world, a_gateway_that_never_ends_idle_long_poll_sessions_fails_a_seed_as_kept_leases) {
  // Some seed has a long-poll runtime crash holding leases: its session must
  // end when idle and give them back.
  expect_a_seed_caught("keep_idle_poll_sessions", "default", 80, "dead_consumer_kept_leases");
}

TEST(sim_world, runs_have_long_poll_and_sse_runtimes_client_channels_and_child_tasks) {
  std::uint64_t polling = 0, streaming = 0, claims = 0, children = 0, channel_outcomes = 0;
  for (std::uint64_t s = 1; s <= 10; ++s) {
    const auto r = run(seed(s));
    ASSERT_TRUE(r.ok()) << "seed " << s << " " << r.failure->invariant << ": " << r.failure->detail;
    auto count = [&](const char* k) { return r.workload.count(k) ? r.workload.at(k) : 0; };
    polling += count("long_poll_runtimes");
    streaming += count("sse_runtimes");
    claims += count("claims");
    children += count("child_tasks");
    channel_outcomes += count("channel_outcomes");
  }
  EXPECT_GT(polling, 0u);
  EXPECT_GT(streaming, 0u);
  EXPECT_GT(claims, 100u);
  EXPECT_GT(children, 100u);
  EXPECT_GT(channel_outcomes, 100u);
}

TEST(sim_world, an_sse_welcome_that_forgets_the_demand_the_node_counts_fails_a_seed_as_refused_demand) {
  expect_a_seed_caught("sse_welcome_forgets_demand", "harsh", 60, "demand_refused");
}

TEST(sim_world, a_gateway_that_ignores_a_channels_order_fails_a_seed_as_out_of_order) {
  expect_a_seed_caught("client_channel_ignores_order", "default", 20, "outcome_out_of_order");
}

TEST(sim_world, a_profile_takes_single_faults_by_name_within_range) {
  auto p = *fault_profile::named("none");
  EXPECT_TRUE(p.set("crash", 0.5));
  EXPECT_EQ(p.crash, 0.5);
  EXPECT_TRUE(p.set("max_delay_ms", 100));
  EXPECT_EQ(p.max_delay_ms, 100);
  EXPECT_FALSE(p.set("loss", 1.5)) << "a probability above 1";
  EXPECT_FALSE(p.set("gremlins", 0.1));
  auto o = seed(4);
  o.faults = p;
  o.faults.set("duplicate", 0.2);
  const auto r = run(o);
  ASSERT_TRUE(r.ok()) << r.failure->detail;
  EXPECT_GT(r.faults_fired.count("duplicate") ? r.faults_fired.at("duplicate") : 0, 0u);
  EXPECT_EQ(r.faults_fired.count("loss"), 0u) << "faults not set stay off";
}
