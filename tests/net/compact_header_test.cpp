// A compact record header (compact_header.hpp) reads back as the JSON header
// written by the same calls would, and a malformed one is refused.
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "drover/net/binary_frame.hpp"
#include "drover/net/compact_header.hpp"
#include "drover/net/record_header.hpp"
#include "record_writer.hpp"
#include "support/same_fields.hpp"

using namespace drover::net;
namespace json = boost::json;

namespace {

/// The header's text, without the 4-byte length.
std::string header_of(const std::string& head) { return head.substr(4); }

/// One field of a generated header, written the same way in both forms.
struct generated_field {
  int what;
  std::uint64_t number;
  std::string text;
};

const std::vector<std::string> texts = {"",     "resize", "caf\xc3\xa9", "quote\" back\\slash", std::string("nul\0in", 6),
                                        "tab\t", std::string(300, 'x')};
const std::vector<std::string> nested = {"{}", "[]", R"({"k":"v","n":[1,2]})", "[true,null]"};

void write_field(record_writer& w, const generated_field& f) {
  // Keys in the table and out of it, so both key forms are read.
  switch (f.what) {
    case 0:
      w.field("task", f.number);
      break;
    case 1:
      w.field("lease", static_cast<std::int64_t>(f.number));  // negative half the time
      break;
    case 2:
      w.field("queue", std::string_view(f.text));
      break;
    case 3:
      w.raw("meta", f.text);
      break;
    case 4:
      w.field("my_own_key", f.number);
      break;
    case 5:
      w.field("caf\xc3\xa9", std::string_view(f.text));
      break;
    default:
      w.field("ttl_ms", f.number);
      break;
  }
}

generated_field random_field(std::mt19937_64& rng) {
  static const std::vector<std::uint64_t> numbers = {0, 1, 127, 128, 16'383, 16'384, std::uint64_t{1} << 63,
                                                     std::numeric_limits<std::uint64_t>::max()};
  generated_field f{static_cast<int>(rng() % 7), rng() % 2 ? numbers[rng() % numbers.size()] : rng(), {}};
  f.text = f.what == 3 ? nested[rng() % nested.size()] : texts[rng() % texts.size()];
  return f;
}

const std::vector<std::string> probe_keys = {"task", "lease", "queue", "meta", "my_own_key", "caf\xc3\xa9",
                                             "ttl_ms", "bytes", "absent"};

/// A compact header by hand: the marker, then `fields` as they are.
std::string compact_text(std::string_view fields) { return std::string(1, char(compact::marker)) + std::string(fields); }

}  // namespace

TEST(compact_header, generated_headers_read_back_as_their_json_twins) {
  std::mt19937_64 rng(20261129);
  for (int i = 0; i < 5'000; ++i) {
    std::vector<generated_field> fields(rng() % 16);  // past the inline table too
    for (auto& f : fields) f = random_field(rng);
    record_writer as_json, as_compact(header_format::compact);
    std::string message(5, 'm');  // a head written into room past a message's records, as the outbox does
    record_writer in_room(message, 3, header_format::compact);
    for (const auto& f : fields) write_field(as_json, f), write_field(as_compact, f), write_field(in_room, f);
    const auto body = rng() % 100;
    in_room.end(body);
    const auto json_text = header_of(std::move(as_json).finish(body));
    const auto compact_head = std::move(as_compact).finish(body);
    const auto compact_text = header_of(compact_head);
    ASSERT_EQ(message.substr(3, in_room.used() - 3), compact_head) << "the same bytes, in room or not";
    record_header a, b;
    ASSERT_TRUE(a.read(json_text)) << json_text;
    ASSERT_TRUE(b.read(compact_text)) << json_text;
    ASSERT_NO_FATAL_FAILURE(drover::test_support::expect_same_fields(a, b, probe_keys, json_text));
    EXPECT_EQ(a.object(), b.object()) << json_text;
  }
}

TEST(compact_header, is_shorter_than_json_for_a_task) {
  record_writer as_json, as_compact(header_format::compact);
  for (auto* w : {&as_json, &as_compact}) {
    w->field("type", "task").field("task", std::uint64_t{123'456}).field("lease", std::uint64_t{654'321});
    w->field("slot", std::uint64_t{17}).field("attempt", std::uint64_t{1}).field("queue", "bench");
    w->field("deadline_ms", std::uint64_t{30'000}).raw("meta", "{}");
  }
  const auto j = std::move(as_json).finish(64), c = std::move(as_compact).finish(64);
  EXPECT_LT(c.size() * 2, j.size()) << c.size() << " vs " << j.size();
}

TEST(compact_header, records_of_both_forms_share_a_message) {
  std::string message;
  record_writer first(message, header_format::compact);
  first.field("type", "result").field("task", std::uint64_t{1});
  first.end(3);
  message += "abc";
  record_writer second(message);
  second.field("type", "result").field("task", std::uint64_t{2});
  second.end(2);
  message += "de";
  std::vector<std::pair<std::uint64_t, std::string>> seen;
  const auto fault = for_each_record(message, [&](const frame_record& r) {
    seen.emplace_back(r.header.uint("task").value_or(0), message.substr(r.body_offset, r.body_size));
  });
  EXPECT_FALSE(fault) << fault.message;
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint64_t, std::string>>{{1, "abc"}, {2, "de"}}));
}

TEST(compact_header, malformed_ones_are_refused) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"key code past the table", compact_text("\x7f\x01\x05")},
      {"key without a value", compact_text("\x02")},
      {"unknown tag", compact_text("\x02\x09\x05")},
      {"tag 0", compact_text(std::string("\x02\x00\x05", 3))},
      {"varint cut short", compact_text("\x02\x01\x80")},
      {"varint past 64 bits", compact_text("\x02\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02")},
      {"varint of eleven bytes", compact_text("\x02\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00")},
      {"string longer than the header", compact_text("\x06\x02\x09queue")},
      {"string of bad UTF-8", compact_text("\x06\x02\x02\xc3\x28")},
      {"overlong UTF-8", compact_text("\x06\x02\x02\xc0\xaf")},
      {"surrogate in UTF-8", compact_text("\x06\x02\x03\xed\xa0\x80")},
      {"named key of bad UTF-8", compact_text(std::string("\x00\x01\xff\x03", 4))},
      {"negative zero", compact_text(std::string("\x02\x07\x00", 3))},
      {"negative past int64", compact_text("\x02\x07\x81\x80\x80\x80\x80\x80\x80\x80\x80\x01")},
      {"json that is a number", compact_text("\x08\x06\x01" "5")},
      {"json that is broken", compact_text("\x08\x06\x02{]")},
  };
  for (const auto& [why, text] : bad) {
    record_header h;
    EXPECT_FALSE(h.read(text)) << why;
  }
  // And the well-formed neighbours of some of them are read.
  const std::vector<std::pair<std::string, std::string>> good = {
      {"no fields", compact_text("")},
      {"varint of ten bytes", compact_text("\x02\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
      {"most negative int64", compact_text("\x02\x07\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")},
      {"four-byte UTF-8", compact_text("\x06\x02\x04\xf0\x9f\x98\x80")},
      {"json array", compact_text("\x08\x06\x05[1,2]")},
  };
  for (const auto& [why, text] : good) {
    record_header h;
    EXPECT_TRUE(h.read(text)) << why;
  }
}

TEST(compact_header, a_malformed_record_refuses_the_rest_of_its_message_as_bad_json) {
  record_writer w(header_format::compact);
  w.field("type", "result").field("task", std::uint64_t{1});
  std::string message = std::move(w).finish(1) + "x";
  const std::string broken = compact_text("\x02\x01\x80");
  message += std::string{0, 0, 0, static_cast<char>(broken.size())} + broken;
  int records = 0;
  const auto fault = for_each_record(message, [&](const frame_record&) { ++records; });
  EXPECT_EQ(records, 1);
  EXPECT_EQ(fault.code, "bad_json");
}

TEST(compact_header, key_codes_never_move) {
  // Codes are on the wire: a change here breaks every peer that speaks it.
  EXPECT_EQ(compact::code_of("type"), 1);
  EXPECT_EQ(compact::code_of("bytes"), 9);
  EXPECT_EQ(compact::code_of("idempotency_key"), 20);
  EXPECT_EQ(compact::code_of("nope"), 0);
  EXPECT_EQ(compact::keys.size(), 21u);
}

TEST(compact_header, every_name_in_the_table_is_found_by_its_code_at_run_time_and_no_other_name_is) {
  for (std::size_t code = 1; code < compact::keys.size(); ++code) {
    EXPECT_EQ(compact::code_of_name(compact::keys[code]), code) << compact::keys[code];
    EXPECT_EQ(record_key::named(compact::keys[code]).code, code);
  }
  for (std::string_view other : {"", "t", "tasks", "Task", "lease ", "my_own_key", "idempotency_kez"})
    EXPECT_EQ(compact::code_of_name(other), 0) << other;
  constexpr record_key literal = "deadline_ms";
  EXPECT_EQ(literal.code, compact::code_of("deadline_ms"));
}

TEST(compact_header, a_table_name_written_out_in_full_is_that_key) {
  // Code 0 and the name: legal, if longer; lookups by the key's code find it.
  std::string fields;
  fields += char(0), fields += char(5), fields += "lease", fields += char(compact::tag::uint), fields += char(7);
  fields += char(compact::code_of("type")), fields += char(compact::tag::string), fields += char(6), fields += "result";
  fields += char(0), fields += char(4), fields += "type", fields += char(compact::tag::string), fields += char(4),
      fields += "task";  // the last of a name wins, written either way
  const std::string text = compact_text(fields);  // outlives the header, which views it
  record_header h;
  ASSERT_TRUE(h.read(text));
  EXPECT_EQ(h.uint("lease"), 7u);
  EXPECT_EQ(h.string("type"), "task");
  EXPECT_EQ(h.object().at("type"), "task");
}

TEST(compact_header, the_example_in_protocol_md_is_what_the_writer_writes) {
  record_writer w(header_format::compact);
  w.field("type", "task").field("task", std::uint64_t{300}).field("lease", std::uint64_t{7}).field("slot", std::uint64_t{2});
  w.field("attempt", std::uint64_t{1}).field("queue", "q").field("deadline_ms", std::uint64_t{30'000}).raw("meta", "{}");
  const std::string expected =
      "\xc1\x01\x02\x04task\x02\x01\xac\x02\x03\x01\x07\x04\x01\x02\x05\x01\x01\x06\x02\x01q\x07\x01\xb0\xea\x01"
      "\x08\x06\x02{}\x09\x01\x40";
  EXPECT_EQ(header_of(std::move(w).finish(64)), expected);
}
