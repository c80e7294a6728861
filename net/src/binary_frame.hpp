#pragma once
// The binary messages of the WebSocket protocols. A binary message holds one
// or more records; a record is a 4-byte big-endian header length, a JSON
// header, then its body (payload or result bytes) exactly as sent. A header
// with `bytes` says how long its body is, and another record may follow; a
// header without it has the rest of the message as its body. So a message of
// one record needs no `bytes`, and a burst of records can share one message.
// The gateway and the runtime client both read and write them here.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

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
  boost::json::object header;
  std::size_t body_offset = 0;  // the body is message[body_offset, body_offset + body_size)
  std::size_t body_size = 0;
};

struct parsed_message {
  std::vector<frame_record> records;  // every record before the first malformed one
  std::string_view error_code;        // empty when the whole message parsed
  std::string_view error_message;
  explicit operator bool() const { return error_code.empty(); }
};

/// Splits a binary message into its records; a malformed record (and what
/// follows it) gives `bad_frame` or `bad_json`.
parsed_message parse_binary_message(std::string_view message);

}  // namespace drover::net
