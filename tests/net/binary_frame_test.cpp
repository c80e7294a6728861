// Binary messages as records: [u32 BE header length][JSON header][body],
// `bytes` bounding a body so that several records can share a message.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "binary_frame.hpp"

using namespace drover::net;
namespace json = boost::json;

namespace {

std::string body_of(std::string_view message, const frame_record& r) {
  return std::string(message.substr(r.body_offset, r.body_size));
}

}  // namespace

TEST(binary_frame, a_record_without_bytes_has_the_rest_of_the_message_as_its_body) {
  const std::string m = binary_head(json::object{{"type", "task"}}) + "payload";
  auto parsed = parse_binary_message(m);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed.records.size(), 1u);
  EXPECT_EQ(parsed.records[0].header.at("type").as_string(), "task");
  EXPECT_EQ(body_of(m, parsed.records[0]), "payload");
}

TEST(binary_frame, records_with_bytes_share_one_message) {
  const std::string m = record_head(json::object{{"n", 1}}, 3) + "one" + record_head(json::object{{"n", 2}}, 0) +
                        binary_head(json::object{{"n", 3}}) + "three";
  auto parsed = parse_binary_message(m);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed.records.size(), 3u);
  EXPECT_EQ(body_of(m, parsed.records[0]), "one");
  EXPECT_EQ(body_of(m, parsed.records[1]), "") << "an empty body";
  EXPECT_EQ(body_of(m, parsed.records[2]), "three");
  EXPECT_EQ(parsed.records[0].header.at("bytes").to_number<std::uint64_t>(), 3u) << "record_head states the body's length";
}

TEST(binary_frame, a_malformed_record_keeps_those_before_it_and_names_the_fault) {
  const std::string good = record_head(json::object{{"n", 1}}, 1) + "x";
  auto beyond = parse_binary_message(good + record_head(json::object{{"n", 2}}, 10) + "short");
  EXPECT_EQ(beyond.error_code, "bad_frame");
  EXPECT_EQ(beyond.records.size(), 1u);
  auto not_json = parse_binary_message(good + std::string("\0\0\0\2{x", 6));
  EXPECT_EQ(not_json.error_code, "bad_json");
  EXPECT_EQ(not_json.records.size(), 1u);
  auto cut = parse_binary_message(good + std::string("\0\0", 2));
  EXPECT_EQ(cut.error_code, "bad_frame") << "a truncated length";
  auto negative = parse_binary_message(binary_head(json::object{{"bytes", -1}}) + "x");
  EXPECT_EQ(negative.error_code, "bad_frame");
  EXPECT_EQ(parse_binary_message("").error_code, "bad_frame");
  EXPECT_EQ(parse_binary_message(std::string("\0\0\0\x10{}", 6)).error_code, "bad_frame") << "header beyond the message";
}

TEST(binary_frame, too_many_records_in_one_message_are_refused) {
  std::string m;
  for (std::size_t i = 0; i <= records_per_message_max; ++i) m += record_head(json::object{}, 0);
  auto parsed = parse_binary_message(m);
  EXPECT_EQ(parsed.error_code, "bad_frame");
  EXPECT_EQ(parsed.records.size(), records_per_message_max);
}
