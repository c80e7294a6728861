// Record heads written by hand must be the JSON a parser reads back.
#include "record_writer.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "binary_frame.hpp"

using namespace drover::net;
namespace json = boost::json;

TEST(record_writer, strings_are_escaped_and_read_back_exactly) {
  const std::string tricky = std::string("plain \"quoted\" back\\slash tab\t nl\n bell\x07 caf\xc3\xa9 ") + '\0' + "end";
  record_writer w;
  w.field("type", "task").field("queue", std::string_view(tricky)).field("task", std::uint64_t{42});
  const auto head = std::move(w).finish(3);
  const auto parsed = parse_binary_message(head + "abc");
  ASSERT_TRUE(parsed) << parsed.error_message;
  ASSERT_EQ(parsed.records.size(), 1u);
  const auto& h = parsed.records[0].header;
  EXPECT_EQ(h.at("type").as_string(), "task");
  EXPECT_EQ(std::string_view(h.at("queue").as_string()), tricky);
  EXPECT_EQ(h.at("task").to_number<std::uint64_t>(), 42u);
  EXPECT_EQ(parsed.records[0].body_size, 3u);
}

TEST(record_writer, text_with_nothing_to_escape_is_copied_as_is) {
  record_writer w;
  w.field("queue", "resize");
  const auto head = std::move(w).finish(0);
  EXPECT_NE(head.find("\"queue\":\"resize\""), std::string::npos) << head.substr(4);
}
