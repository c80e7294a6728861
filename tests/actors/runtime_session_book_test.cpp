// A runtime session's books: demand against capacity, leases held, and what
// a resume tells the runtime.
#include "drover/actors/runtime_session_book.hpp"

#include <gtest/gtest.h>

#include "actors/remote_tasks.hpp"

using namespace drover;
using namespace drover::actors;

namespace {

using test_support::task;

}  // namespace

TEST(runtime_session_book, demand_and_held_leases_never_exceed_the_capacity) {
  runtime_session_book b(3);
  EXPECT_TRUE(b.demand(2));
  b.delivered(task(1, 10));
  EXPECT_EQ(b.granted(), 1u);
  EXPECT_EQ(b.in_flight(), 1u);
  EXPECT_FALSE(b.demand(2)) << "1 granted + 1 held + 2 > 3";
  EXPECT_EQ(b.granted(), 1u) << "a refused demand changes nothing";
  EXPECT_TRUE(b.demand(1));
  b.ended(10);
  EXPECT_EQ(b.in_flight(), 0u);
}

TEST(runtime_session_book, a_lease_is_held_only_for_its_own_task) {
  runtime_session_book b(2);
  ASSERT_TRUE(b.demand(1));
  b.delivered(task(1, 10));
  EXPECT_NE(b.held(1, 10), nullptr);
  EXPECT_EQ(b.held(2, 10), nullptr);
  EXPECT_EQ(b.held(1, 11), nullptr);
}

TEST(runtime_session_book, a_report_is_taken_once_and_only_for_its_own_task) {
  runtime_session_book b(2);
  ASSERT_TRUE(b.demand(2));
  b.delivered(task(1, 10));
  b.delivered(task(2, 11));
  EXPECT_FALSE(b.reported(2, 10)) << "lease 10 is task 1's";
  EXPECT_TRUE(b.reported(1, 10));
  EXPECT_FALSE(b.reported(1, 10)) << "a second report of the same lease is stale";
  EXPECT_EQ(b.in_flight(), 1u);
  EXPECT_TRUE(b.ended(11)) << "a revoke of a held lease";
  EXPECT_FALSE(b.ended(11)) << "a revoke of a lease already gone is dropped";
}

TEST(runtime_session_book, a_resume_resends_what_the_runtime_lost_cancels_what_it_no_longer_holds_and_counts_the_resends) {
  runtime_session_book b(4);
  ASSERT_TRUE(b.demand(4));
  b.delivered(task(1, 10));  // the runtime has it
  b.delivered(task(2, 11));  // lost with the connection
  b.delivered(task(3, 12));  // delivered while it was away
  b.ended(13);               // nothing
  auto r = b.resume({{1, 10}, {9, 99}}, 4);
  ASSERT_EQ(r.resend.size(), 2u);
  EXPECT_EQ(r.resend[0]->item.lease.value, 11u);
  EXPECT_EQ(r.resend[1]->item.lease.value, 12u);
  ASSERT_EQ(r.cancel.size(), 1u);
  EXPECT_EQ(r.cancel[0].lease, 99u);
  EXPECT_EQ(b.granted(), 1u);
  EXPECT_EQ(r.granted, 3u) << "1 unfilled + 2 task frames about to fill demand the runtime counts";
}
