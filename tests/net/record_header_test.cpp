// A record header read field by field, as a parsed JSON object would answer.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "drover/net/record_header.hpp"
#include "support/same_fields.hpp"

using drover::net::is_literal;
using drover::net::record_header;
namespace json = boost::json;

namespace {

// The header views `text`: callers keep it alive.
record_header read(const std::string& text) {
  record_header h;
  EXPECT_TRUE(h.read(text)) << text;
  return h;
}

}  // namespace

TEST(record_header, reads_whole_numbers_strings_and_booleans_by_name) {
  const std::string text = R"({"type":"result","task":12,"lease":18446744073709551615,"ok":true,"none":null})";
  const auto h = read(text);
  EXPECT_EQ(h.string("type"), "result");
  EXPECT_EQ(h.uint("task"), 12u);
  EXPECT_EQ(h.uint("lease"), UINT64_MAX);
  EXPECT_EQ(h.boolean("ok"), true);
  EXPECT_TRUE(h.contains("none"));
  EXPECT_FALSE(h.contains("missing"));
}

TEST(record_header, a_field_of_another_type_is_not_taken_for_the_asked_one) {
  const std::string text = R"({"task":"12","lease":-1,"slot":1.5,"ref":true,"queue":7})";
  const auto h = read(text);
  EXPECT_TRUE(h.contains("task"));
  EXPECT_EQ(h.uint("task"), std::nullopt);
  EXPECT_EQ(h.uint("lease"), std::nullopt) << "negative";
  EXPECT_EQ(h.uint("slot"), std::nullopt) << "not whole";
  EXPECT_EQ(h.uint("ref"), std::nullopt);
  EXPECT_EQ(h.string("queue"), std::nullopt);
  EXPECT_EQ(h.boolean("task"), std::nullopt);
}

TEST(record_header, escaped_strings_and_keys_are_unescaped) {
  const std::string text = R"({"qu\u0065ue":"a\"b\\c\u00e9","type":"task"})";
  const auto h = read(text);
  EXPECT_EQ(h.string("queue"), "a\"b\\c\xc3\xa9");
  EXPECT_EQ(h.string("type"), "task");
}

TEST(record_header, nested_values_are_parsed_when_asked_for_and_do_not_hide_later_fields) {
  const std::string text = R"({"meta":{"tenant":"acme","task":99},"list":[1,{"a":2}],"task":5,"error":{}})";
  const auto h = read(text);
  EXPECT_EQ(h.uint("task"), 5u) << "the nested task is not the header's";
  ASSERT_NE(h.nested("meta"), nullptr);
  EXPECT_EQ(h.nested("meta")->as_object().at("tenant").as_string(), "acme");
  ASSERT_NE(h.nested("list"), nullptr);
  EXPECT_TRUE(h.nested("list")->is_array());
  EXPECT_NE(h.nested("error"), nullptr);
  EXPECT_EQ(h.nested("task"), nullptr) << "a flat field is not nested";
}

TEST(record_header, empty_nested_values_are_given_as_such) {
  const std::string text = R"({"meta":{},"tags":[],"task":1,"deep":{"a":{}}})";
  const auto h = read(text);
  ASSERT_NE(h.nested("meta"), nullptr);
  EXPECT_TRUE(h.nested("meta")->is_object() && h.nested("meta")->as_object().empty());
  ASSERT_NE(h.nested("tags"), nullptr);
  EXPECT_TRUE(h.nested("tags")->is_array() && h.nested("tags")->as_array().empty());
  ASSERT_NE(h.nested("deep"), nullptr);
  EXPECT_EQ(h.nested("deep")->as_object().size(), 1u) << "not empty: its inner {} is not its own";
  EXPECT_EQ(h.uint("task"), 1u);
}

TEST(record_header, the_last_of_repeated_keys_wins) {
  const std::string text = R"({"task":1,"task":2})";
  const auto h = read(text);
  EXPECT_EQ(h.uint("task"), 2u);
  EXPECT_EQ(json::parse(text).at("task").as_int64(), 2) << "as in a parsed object";
}

TEST(record_header, a_set_of_absent_keys_is_ruled_out_at_once_unless_the_header_overflowed) {
  const std::string text = R"({"type":"submit","ref":1,"queue":"q","priority":3})";
  const auto h = read(text);
  EXPECT_FALSE(h.may_contain_any(record_header::code_bit("ttl_ms") | record_header::code_bit("delay_ms")));
  EXPECT_TRUE(h.may_contain_any(record_header::code_bit("ttl_ms") | record_header::code_bit("priority")));
  json::object o;
  for (std::size_t i = 0; i < record_header::inline_fields + 1; ++i) o["k" + std::to_string(i)] = i;
  o["ttl_ms"] = 5;  // beyond the table: only the parsed object knows
  const std::string past = json::serialize(o);
  const auto big = read(past);
  EXPECT_TRUE(big.may_contain_any(record_header::code_bit("ttl_ms")));
  EXPECT_EQ(big.uint("ttl_ms"), 5u);
}

TEST(record_header, fields_beyond_the_inline_table_are_still_found) {
  json::object o;
  for (std::size_t i = 0; i < record_header::inline_fields + 5; ++i) o["k" + std::to_string(i)] = i;
  o["type"] = "submit";
  const std::string text = json::serialize(o);
  const auto h = read(text);
  EXPECT_EQ(h.uint("k0"), 0u);
  EXPECT_EQ(h.uint(drover::net::record_key::named("k" + std::to_string(record_header::inline_fields + 4))),
            record_header::inline_fields + 4);
  EXPECT_EQ(h.string("type"), "submit");
  EXPECT_FALSE(h.contains("k99"));
}

TEST(record_header, anything_but_one_json_object_is_refused) {
  for (const std::string bad : {"", "[]", "12", "\"x\"", "{", "{\"a\":}", "{} {}", "{}x", "{\"a\":1,}"}) {
    record_header h;
    EXPECT_FALSE(h.read(bad)) << bad;
  }
  record_header h;
  EXPECT_TRUE(h.read(" {} ")) << "whitespace around the object";
}

TEST(record_header, a_header_read_again_forgets_the_previous_one) {
  record_header h;
  const std::string first = R"({"task":1,"meta":{"a":"b"}})", second = R"({"lease":2})";
  ASSERT_TRUE(h.read(first));
  ASSERT_NE(h.nested("meta"), nullptr);
  ASSERT_TRUE(h.read(second));
  EXPECT_FALSE(h.contains("task"));
  EXPECT_EQ(h.nested("meta"), nullptr);
  EXPECT_EQ(h.uint("lease"), 2u);
}

namespace {

const std::vector<std::string> probe_keys = {"type", "task", "lease", "slot", "queue", "meta", "a\"b", "ab", "k\xc3\xa9"};

/// A random header: plain pieces (the scan's) mixed with escapes, UTF-8,
/// signs, fractions, big numbers, nested values and plain mistakes, then
/// sometimes cut short or with a byte changed.
std::string random_header(std::mt19937& rng) {
  static const std::vector<std::string> keys = {R"("type")", R"("task")", R"("lease")", R"("slot")", R"("queue")",
                                                R"("meta")", R"("a\"b")", R"("a\u0062")", "\"k\xc3\xa9\"", R"("ab)"};
  static const std::vector<std::string> values = {
      R"("result")", "0", "7", "42", "9999999999999999999", "18446744073709551615", "18446744073709551616", "-3", "-0",
      "1.5", "1e3", "1E3", "01", "true", "false", "null", "tru", "nul", "{}", "{ }", "[]", "[\t]", R"({"x":1})",
      "[1,2]", R"("a\"b")", "\"caf\xc3\xa9\"", "\"tab\there\"", R"("\u00e9")", "\"\xff\"", "", R"("x)"};
  static const std::vector<std::string> spaces = {"", "", "", " ", "\n", "\t ", "\r\n"};
  auto pick = [&](const std::vector<std::string>& from) { return from[rng() % from.size()]; };
  std::string text = pick(spaces) + "{" + pick(spaces);
  const auto fields = rng() % 16;
  for (std::size_t i = 0; i < fields; ++i) {
    if (i > 0) text += pick(spaces) + "," + pick(spaces);
    text += pick(keys) + pick(spaces) + ":" + pick(spaces) + pick(values);
  }
  text += pick(spaces) + "}" + pick(spaces);
  switch (rng() % 8) {
    case 0:
      text.resize(rng() % (text.size() + 1));
      break;
    case 1:
      text[rng() % text.size()] = "{}[],:\" 0a-\\"[rng() % 12];
      break;
    case 2:
      text += "x";
      break;
    default:
      break;
  }
  return text;
}

}  // namespace

TEST(record_header, the_plain_scan_and_the_event_parser_agree_on_generated_headers) {
  std::mt19937 rng(20261129);
  std::size_t accepted = 0;
  for (int i = 0; i < 30'000; ++i) {
    const std::string text = random_header(rng);
    record_header fast, parser;
    const bool ok = fast.read(text);
    ASSERT_EQ(ok, parser.read_with_parser(text)) << text;
    if (!ok) continue;
    ++accepted;
    ASSERT_NO_FATAL_FAILURE(drover::test_support::expect_same_fields(fast, parser, probe_keys, text));
  }
  EXPECT_GT(accepted, 3'000u) << "the generator must give valid headers too";
}

TEST(record_header, plain_headers_with_an_empty_object_or_array_keep_them) {
  record_header h;
  const std::string text = R"({"type":"task","task":12,"meta":{ },"tags":[],"ok":true,"gone":null})";
  ASSERT_TRUE(h.read(text));
  ASSERT_NE(h.nested("meta"), nullptr);
  EXPECT_TRUE(h.nested("meta")->as_object().empty());
  ASSERT_NE(h.nested("tags"), nullptr);
  EXPECT_TRUE(h.nested("tags")->as_array().empty());
  EXPECT_EQ(h.boolean("ok"), true);
  EXPECT_TRUE(h.contains("gone"));
  EXPECT_EQ(h.uint("task"), 12u);
}

TEST(record_header, is_literal_matches_the_whole_text_and_nothing_else) {
  EXPECT_TRUE(is_literal(std::string_view("result"), "result"));
  EXPECT_FALSE(is_literal(std::string_view("resulT"), "result")) << "same length, one byte off";
  EXPECT_FALSE(is_literal(std::string_view("resul"), "result"));
  EXPECT_FALSE(is_literal(std::string_view("results"), "result"));
  EXPECT_FALSE(is_literal(std::nullopt, "result")) << "absent";
  EXPECT_TRUE(is_literal(std::string_view(""), ""));
}
