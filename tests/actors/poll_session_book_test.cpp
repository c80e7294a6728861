// A long-poll session's and an SSE stream's books: what a claim asks for,
// what a stream may ask for, and what a resumed stream gets again.
#include "drover/actors/poll_session_book.hpp"

#include <gtest/gtest.h>

#include "actors/remote_tasks.hpp"

using namespace drover;
using namespace drover::actors;

namespace {

using test_support::task;

std::vector<remote_task> tasks(std::initializer_list<std::pair<std::uint64_t, std::uint64_t>> list) {
  std::vector<remote_task> out;
  for (auto [id, lease] : list) out.push_back(task(id, lease));
  return out;
}

}  // namespace

TEST(poll_session_book, a_claim_asks_only_for_what_is_neither_ready_nor_asked_for) {
  poll_session_book b;
  EXPECT_FALSE(b.stream());
  EXPECT_EQ(b.claim(4), 4u);
  EXPECT_EQ(b.claim(4), 0u) << "the first claim's demand still stands";
  b.delivered(tasks({{1, 10}}));
  EXPECT_EQ(b.outstanding(), 3u);
  EXPECT_EQ(b.claim(6), 2u) << "1 ready + 3 asked for, 2 more to reach 6";
  EXPECT_EQ(b.outstanding(), 5u);
}

TEST(poll_session_book, a_claim_takes_at_most_max_ready_tasks_in_delivery_order) {
  poll_session_book b;
  b.claim(3);
  b.delivered(tasks({{1, 10}, {2, 11}, {3, 12}}));
  auto first = b.take(2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].item.id.value, 1u);
  EXPECT_EQ(first[1].item.id.value, 2u);
  EXPECT_EQ(b.ready(), 1u);
  EXPECT_EQ(b.take(5).size(), 1u);
  EXPECT_TRUE(b.take(5).empty());
}

TEST(poll_session_book, a_revoked_lease_is_never_claimed) {
  poll_session_book b;
  b.claim(2);
  b.delivered(tasks({{1, 10}, {2, 11}}));
  b.revoked(core::lease_id{10});
  auto got = b.take(2);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].item.lease.value, 11u);
}

TEST(poll_session_book, a_stream_opens_with_its_capacity_as_demand_and_never_asks_beyond_it) {
  poll_session_book b(3);
  EXPECT_TRUE(b.stream());
  EXPECT_EQ(b.open(), 3u);
  EXPECT_FALSE(b.demand(1)) << "3 asked for already";
  b.delivered(tasks({{1, 10}, {2, 11}}));
  EXPECT_EQ(b.stream_ready().size(), 2u);
  EXPECT_FALSE(b.demand(1)) << "2 events unanswered + 1 asked for";
  b.reported(core::lease_id{10});
  EXPECT_TRUE(b.demand(1));
  EXPECT_EQ(b.outstanding(), 2u);
  EXPECT_FALSE(b.demand(1));
}

TEST(poll_session_book, events_are_numbered_and_a_resumed_stream_gets_the_unanswered_ones_after_its_last_id) {
  poll_session_book b(4);
  b.open();
  b.delivered(tasks({{1, 10}, {2, 11}, {3, 12}}));
  auto events = b.stream_ready();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].id, 1u);
  EXPECT_EQ(events[2].id, 3u);
  EXPECT_EQ(events[2].task->item.id.value, 3u);
  b.reported(core::lease_id{12});  // event 3 answered
  auto again = b.unanswered_after(1);
  ASSERT_EQ(again.size(), 1u) << "event 2 only: 1 was seen, 3 answered";
  EXPECT_EQ(again[0].id, 2u);
  EXPECT_EQ(b.unanswered_after(0).size(), 2u);
  b.revoked(core::lease_id{11});
  EXPECT_EQ(b.unanswered_after(0).size(), 1u);
  b.delivered(tasks({{4, 13}}));
  EXPECT_EQ(b.stream_ready()[0].id, 4u) << "ids keep growing";
}

TEST(poll_session_book, a_resumed_stream_is_told_the_demand_still_counted_including_what_it_gets_again) {
  poll_session_book b(6);
  b.open();                                            // 6 asked for
  b.delivered(tasks({{1, 10}, {2, 11}, {3, 12}}));     // 3 asked for
  b.stream_ready();                                    // events 1..3
  b.delivered(tasks({{4, 13}}));                       // 2 asked for, 1 ready
  b.reported(core::lease_id{10});
  EXPECT_EQ(b.requested_after(1), 2u + 1u + 2u) << "asked for, ready, and events 2 and 3 sent again";
  EXPECT_EQ(b.requested_after(3), 3u) << "nothing is sent again after the last event";
}

TEST(poll_session_book, a_revoked_lease_the_runtime_claimed_is_a_cancel_to_pass_on_once) {
  poll_session_book b;
  b.claim(3);
  b.delivered(tasks({{1, 10}, {2, 11}, {3, 12}}));
  (void)b.take(2);  // tasks 1 and 2 are the runtime's now
  b.revoked(core::lease_id{12});
  EXPECT_FALSE(b.has_cancels()) << "task 3 was never claimed: it only leaves the books";
  b.revoked(core::lease_id{11});
  ASSERT_TRUE(b.has_cancels());
  auto cancels = b.take_cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task, core::task_id{2});
  EXPECT_EQ(cancels[0].lease, core::lease_id{11});
  EXPECT_FALSE(b.has_cancels()) << "passed on once";
  b.reported(core::lease_id{10});
  b.revoked(core::lease_id{10});
  EXPECT_FALSE(b.has_cancels()) << "a reported lease is not the runtime's any more";
}

TEST(poll_session_book, a_revoked_lease_sent_as_an_event_is_a_cancel_and_is_not_sent_again) {
  poll_session_book b(4);
  b.open();
  b.delivered(tasks({{1, 10}, {2, 11}}));
  (void)b.stream_ready();
  b.revoked(core::lease_id{10});
  auto cancels = b.take_cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].task, core::task_id{1});
  auto again = b.unanswered_after(0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].task->item.lease, core::lease_id{11});
}
