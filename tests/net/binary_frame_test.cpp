// Binary messages as records: [u32 BE header length][JSON header][body],
// `bytes` bounding a body so that several records can share a message.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "drover/net/binary_frame.hpp"

using namespace drover::net;
namespace json = boost::json;

namespace {

struct read_back {
  std::vector<std::string> headers, bodies;
  message_fault fault;
};

read_back read_all(std::string_view m) {
  read_back out;
  out.fault = for_each_record(m, [&](const frame_record& r) {
    out.headers.emplace_back(r.header.text());
    out.bodies.emplace_back(m.substr(r.body_offset, r.body_size));
  });
  return out;
}

}  // namespace

TEST(binary_frame, a_record_without_bytes_has_the_rest_of_the_message_as_its_body) {
  const std::string m = binary_head(json::object{{"type", "task"}}) + "payload";
  std::vector<std::string> types;
  auto fault = for_each_record(m, [&](const frame_record& r) { types.emplace_back(*r.header.string("type")); });
  EXPECT_FALSE(fault);
  EXPECT_EQ(types, std::vector<std::string>{"task"});
  EXPECT_EQ(read_all(m).bodies, std::vector<std::string>{"payload"});
}

TEST(binary_frame, records_with_bytes_share_one_message) {
  const std::string m = record_head(json::object{{"n", 1}}, 3) + "one" + record_head(json::object{{"n", 2}}, 0) +
                        binary_head(json::object{{"n", 3}}) + "three";
  auto all = read_all(m);
  ASSERT_FALSE(all.fault);
  EXPECT_EQ(all.bodies, (std::vector<std::string>{"one", "", "three"})) << "an empty body in the middle";
  EXPECT_EQ(all.headers[0], R"({"n":1,"bytes":3})") << "record_head states the body's length";
}

TEST(binary_frame, a_malformed_record_keeps_those_before_it_and_names_the_fault) {
  const std::string good = record_head(json::object{{"n", 1}}, 1) + "x";
  auto beyond = read_all(good + record_head(json::object{{"n", 2}}, 10) + "short");
  EXPECT_EQ(beyond.fault.code, "bad_frame");
  EXPECT_EQ(beyond.bodies.size(), 1u);
  auto not_json = read_all(good + std::string("\0\0\0\2{x", 6));
  EXPECT_EQ(not_json.fault.code, "bad_json");
  EXPECT_EQ(not_json.bodies.size(), 1u);
  EXPECT_EQ(read_all(good + std::string("\0\0\0\2[]", 6)).fault.code, "bad_json") << "a header that is not an object";
  auto cut = read_all(good + std::string("\0\0", 2));
  EXPECT_EQ(cut.fault.code, "bad_frame") << "a truncated length";
  EXPECT_EQ(read_all(binary_head(json::object{{"bytes", -1}}) + "x").fault.code, "bad_frame");
  EXPECT_EQ(read_all(binary_head(json::object{{"bytes", "1"}}) + "x").fault.code, "bad_frame");
  EXPECT_EQ(read_all("").fault.code, "bad_frame");
  EXPECT_EQ(read_all(std::string("\0\0\0\x10{}", 6)).fault.code, "bad_frame") << "header beyond the message";
}

TEST(binary_frame, too_many_records_in_one_message_are_refused) {
  std::string m;
  for (std::size_t i = 0; i <= records_per_message_max; ++i) m += record_head(json::object{}, 0);
  auto all = read_all(m);
  EXPECT_EQ(all.fault.code, "bad_frame");
  EXPECT_EQ(all.bodies.size(), records_per_message_max);
}
