// A node session's outbox: records queued back to back share one message
// (written where they will be sent), up to the message bound, in order with
// the text frames between them; without merging each record is a frame.
#include "frame_outbox.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "drover/net/binary_frame.hpp"

using namespace drover::net;
using drover::core::bytes;

namespace {

struct seen_record {
  std::uint64_t n;
  std::string body;
};

/// The records of one binary frame as its reader sees them.
std::vector<seen_record> records_of(const out_frame& f) {
  const std::string message = f.head + std::string(f.body.view());
  std::vector<seen_record> out;
  const auto fault = for_each_record(message, [&](const frame_record& r) {
    out.push_back({r.header.uint("n").value_or(~0ull), message.substr(r.body_offset, r.body_size)});
  });
  EXPECT_FALSE(fault) << fault.message;
  return out;
}

void push_numbered(frame_outbox& o, std::uint64_t n, const bytes& body) {
  o.push_record([&](record_writer& h) { h.field("type", "task").field("n", n); }, body);
}

std::vector<out_frame> drain(frame_outbox& o) {
  std::vector<out_frame> frames;
  while (!o.empty()) {
    frames.push_back(std::move(o.front()));
    o.pop_front();
  }
  return frames;
}

}  // namespace

TEST(frame_outbox, merged_records_share_one_message_in_order_with_text_frames_between_runs) {
  frame_outbox o;
  o.merge_records(true);
  const auto body = bytes::copy_from(std::string_view("payload"));
  for (std::uint64_t n = 0; n < 3; ++n) push_numbered(o, n, body);
  o.push(out_frame{false, R"({"type":"cancel"})", {}});
  for (std::uint64_t n = 3; n < 5; ++n) push_numbered(o, n, body);

  const auto frames = drain(o);
  ASSERT_EQ(frames.size(), 3u);
  const auto first = records_of(frames[0]);
  ASSERT_EQ(first.size(), 3u);
  for (std::uint64_t n = 0; n < 3; ++n) {
    EXPECT_EQ(first[n].n, n);
    EXPECT_EQ(first[n].body, "payload");
  }
  EXPECT_FALSE(frames[1].binary);
  const auto second = records_of(frames[2]);
  ASSERT_EQ(second.size(), 2u);
  EXPECT_EQ(second[0].n, 3u);
  EXPECT_EQ(second[1].n, 4u);
  EXPECT_TRUE(frames[0].body.empty()) << "a merged message holds its records' bodies itself";
}

TEST(frame_outbox, a_message_of_records_stays_under_the_bound_and_the_next_record_starts_another) {
  frame_outbox o;
  o.merge_records(true);
  const auto body = bytes::copy_from(std::string(1000, 'x'));
  constexpr std::uint64_t count = 200;  // about 200 KB: several messages
  for (std::uint64_t n = 0; n < count; ++n) push_numbered(o, n, body);
  const auto frames = drain(o);
  ASSERT_GT(frames.size(), 2u);
  std::uint64_t next = 0;
  for (const auto& f : frames) {
    EXPECT_LE(f.head.size() + f.body.size(), merged_message_bytes_max);
    for (const auto& r : records_of(f)) {
      EXPECT_EQ(r.n, next++);
      EXPECT_EQ(r.body.size(), 1000u);
    }
  }
  EXPECT_EQ(next, count);
}

TEST(frame_outbox, a_record_past_the_bound_goes_alone_with_its_body_shared_and_the_next_starts_a_message) {
  frame_outbox o;
  o.merge_records(true);
  const auto small = bytes::copy_from(std::string_view("abc"));
  const auto big = bytes::copy_from(std::string(merged_message_bytes_max, 'x'));
  push_numbered(o, 0, small);
  push_numbered(o, 1, big);
  push_numbered(o, 2, small);
  push_numbered(o, 3, small);
  const auto frames = drain(o);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(records_of(frames[0]).at(0).n, 0u);
  EXPECT_TRUE(frames[1].body.same_buffer(big));
  EXPECT_EQ(records_of(frames[1]).at(0).n, 1u);
  const auto last = records_of(frames[2]);
  ASSERT_EQ(last.size(), 2u);
  EXPECT_EQ(last[0].n, 2u);
  EXPECT_EQ(last[1].n, 3u);
  EXPECT_EQ(last[1].body, "abc");
}

TEST(frame_outbox, without_merging_each_record_is_a_frame_with_its_body_shared_not_copied) {
  frame_outbox o;
  const auto body = bytes::copy_from(std::string_view("payload"));
  push_numbered(o, 0, body);
  push_numbered(o, 1, body);
  auto frames = drain(o);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_TRUE(frames[0].body.same_buffer(body));
  EXPECT_EQ(records_of(frames[1]).at(0).n, 1u);
}

TEST(frame_outbox, records_after_a_frame_given_back_start_a_new_message_behind_it) {
  frame_outbox o;
  o.merge_records(true);
  const auto body = bytes::copy_from(std::string_view("p"));
  push_numbered(o, 0, body);
  auto taken = std::move(o.front());
  o.pop_front();
  o.push_front(std::move(taken));  // a failed write gives it back
  push_numbered(o, 1, body);
  const auto frames = drain(o);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(records_of(frames[0]).at(0).n, 0u);
  EXPECT_EQ(records_of(frames[1]).at(0).n, 1u);
}

TEST(frame_outbox, the_open_message_holds_exactly_its_records_whenever_the_writer_looks) {
  // Records are written into room kept past the open message's end; the
  // front the writer sees ends at the last record, and records pushed
  // after a look still join the message.
  frame_outbox o;
  o.merge_records(true);
  const auto body = bytes::copy_from(std::string_view("xyz"));
  push_numbered(o, 0, body);
  const std::size_t one = o.front().head.size();
  EXPECT_EQ(records_of(o.front()).size(), 1u);
  push_numbered(o, 1, body);
  push_numbered(o, 2, body);
  EXPECT_EQ(o.front().head.size(), 3 * one) << "nothing past the third record";
  const auto frames = drain(o);
  ASSERT_EQ(frames.size(), 1u);
  const auto records = records_of(frames[0]);
  ASSERT_EQ(records.size(), 3u);
  for (std::uint64_t n = 0; n < 3; ++n) {
    EXPECT_EQ(records[n].n, n);
    EXPECT_EQ(records[n].body, "xyz");
  }
}
