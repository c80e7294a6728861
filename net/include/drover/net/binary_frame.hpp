#pragma once
// The binary messages of the WebSocket protocols. A binary message holds one
// or more records; a record is a 4-byte big-endian header length, a JSON
// header, then its body (payload or result bytes) exactly as sent. A header
// with `bytes` says how long its body is, and another record may follow; a
// header without it has the rest of the message as its body. So a message of
// one record needs no `bytes`, and a burst of records can share one message.
// The gateway, the runtime client and the benchmark's producer read and
// write them here.
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "drover/net/record_header.hpp"

namespace drover::net {

/// Headers above this are refused (a frame's payload may be far larger).
constexpr std::size_t frame_header_bytes_max = 64 * 1024;
/// Records in one message above this are refused.
constexpr std::size_t records_per_message_max = 4096;

/// The 4-byte length and the serialised header: what precedes the body.
std::string binary_head(const boost::json::object& header);

/// The head of a record that may share its message with others: the header
/// gains `bytes`, its body's length.
std::string record_head(boost::json::object header, std::size_t body_bytes);

struct frame_record {
  record_header header;    // views into the message
  std::size_t body_offset = 0;  // the body is message[body_offset, body_size)
  std::size_t body_size = 0;
};

/// Why the rest of a message was refused (`bad_frame` or `bad_json`); empty
/// when every record was read.
struct message_fault {
  std::string_view code;
  std::string_view message;
  explicit operator bool() const { return !code.empty(); }
};

/// Reads the record at `at` into `r`; the offset of the next one, or the
/// fault that ends the message.
struct record_step {
  std::size_t next = 0;
  message_fault fault;
};
record_step read_record(std::string_view message, std::size_t at, frame_record& r);

/// Calls `each(const frame_record&)` for the records of a message in order,
/// up to the first malformed one, whose fault it returns. Headers are read
/// into one record in turn: `each` copies what it keeps.
template <class Each>
message_fault for_each_record(std::string_view message, Each&& each) {
  frame_record r;
  std::size_t at = 0, count = 0;
  do {
    if (count++ == records_per_message_max) return {"bad_frame", "too many records in one message"};
    const auto step = read_record(message, at, r);
    if (step.fault) return step.fault;
    each(static_cast<const frame_record&>(r));
    at = step.next;
  } while (at < message.size());
  return {};
}

}  // namespace drover::net
