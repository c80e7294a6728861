// Record heads written by hand must be the JSON a parser reads back.
#include "record_writer.hpp"

#include <gtest/gtest.h>

#include <limits>

#include <boost/json.hpp>

#include "drover/net/binary_frame.hpp"

using namespace drover::net;
namespace json = boost::json;

TEST(record_writer, strings_are_escaped_and_read_back_exactly) {
  const std::string tricky = std::string("plain \"quoted\" back\\slash tab\t nl\n bell\x07 caf\xc3\xa9 ") + '\0' + "end";
  record_writer w;
  w.field("type", "task").field("queue", std::string_view(tricky)).field("task", std::uint64_t{42});
  const auto head = std::move(w).finish(3);
  const std::string message = head + "abc";
  int records = 0;
  const auto fault = for_each_record(message, [&](const frame_record& r) {
    ++records;
    // Both ways of reading a header: the event reader and a parsed object.
    EXPECT_EQ(r.header.string("type"), "task");
    EXPECT_EQ(r.header.string("queue"), tricky);
    EXPECT_EQ(r.header.uint("task"), 42u);
    EXPECT_EQ(std::string_view(json::parse(r.header.text()).at("queue").as_string()), tricky);
    EXPECT_EQ(r.body_size, 3u);
  });
  EXPECT_FALSE(fault) << fault.message;
  EXPECT_EQ(records, 1);
}

TEST(record_writer, text_with_nothing_to_escape_is_copied_as_is) {
  record_writer w;
  w.field("queue", "resize");
  const auto head = std::move(w).finish(0);
  EXPECT_NE(head.find("\"queue\":\"resize\""), std::string::npos) << head.substr(4);
}

TEST(record_writer, heads_longer_than_its_first_buffer_and_extreme_numbers_read_back) {
  const std::string long_text(1000, 'x');
  const std::string escapes(300, '\n');  // six bytes each once escaped
  record_writer w;
  w.field("max", std::numeric_limits<std::uint64_t>::max())
      .field("min", std::numeric_limits<std::int64_t>::min())
      .field("zero", std::uint64_t{0})
      .field("long", std::string_view(long_text))
      .field("escapes", std::string_view(escapes))
      .raw("meta", R"({"k":"v"})");
  const auto head = std::move(w).finish(0);
  const auto parsed = json::parse(std::string_view(head).substr(4)).as_object();
  EXPECT_EQ(parsed.at("max").as_uint64(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(parsed.at("min").as_int64(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(parsed.at("zero").as_int64(), 0);
  EXPECT_EQ(parsed.at("long").as_string(), long_text);
  EXPECT_EQ(parsed.at("escapes").as_string(), escapes);
  EXPECT_EQ(parsed.at("meta").at("k").as_string(), "v");
  EXPECT_EQ(parsed.at("bytes").as_int64(), 0);
  const auto n = (std::uint32_t(std::uint8_t(head[0])) << 24) | (std::uint32_t(std::uint8_t(head[1])) << 16) |
                 (std::uint32_t(std::uint8_t(head[2])) << 8) | std::uint32_t(std::uint8_t(head[3]));
  EXPECT_EQ(n, head.size() - 4);
}

TEST(record_writer, a_head_written_into_room_leaves_the_room_and_says_where_it_ends) {
  std::string message(300, '\0');
  record_writer h(message, 10, header_format::json);
  h.field("type", "task").field("n", std::uint64_t{7});
  h.end(2);
  EXPECT_EQ(message.size(), 300u) << "the room past the head is the caller's";
  const std::string head = message.substr(10, h.used() - 10);
  record_writer alone;
  alone.field("type", "task").field("n", std::uint64_t{7});
  EXPECT_EQ(head, std::move(alone).finish(2)) << "the same bytes as a head of its own";
}

TEST(record_writer, repeated_fields_are_encoded_once_per_key_and_read_back_in_every_head) {
  repeated_fields<int> shared;
  int encodings = 0;
  std::string message;
  auto write = [&](int key, std::string_view queue, std::uint64_t task) {
    record_writer w(message, header_format::compact);
    w.encoded(shared.get(key, [&](record_writer& s) {
      ++encodings;
      s.field("type", "task").field("queue", queue);
    }));
    w.field("task", task);
    w.end(0);
  };
  write(7, "q", 1);
  write(7, "q", 2);
  write(8, "resize", 3);  // another key: encoded again
  write(8, "resize", 4);
  EXPECT_EQ(encodings, 2);
  std::vector<std::pair<std::string, std::uint64_t>> read;
  const auto fault = for_each_record(message, [&](const frame_record& r) {
    EXPECT_EQ(r.header.string("type"), "task");
    read.emplace_back(std::string(r.header.string("queue").value_or("")), r.header.uint("task").value_or(0));
  });
  EXPECT_FALSE(fault) << fault.message;
  const std::vector<std::pair<std::string, std::uint64_t>> expected{{"q", 1}, {"q", 2}, {"resize", 3}, {"resize", 4}};
  EXPECT_EQ(read, expected);
}
