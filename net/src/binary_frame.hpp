#pragma once
// The binary frame of the WebSocket protocols: a 4-byte big-endian header
// length, a JSON header, then the payload bytes exactly as they were sent.
// The gateway and the runtime client both read and write it here.
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

namespace drover::net {

/// Headers above this are refused (a frame's payload may be far larger).
constexpr std::size_t frame_header_bytes_max = 64 * 1024;

/// The 4-byte length and the serialised header: what precedes the payload.
std::string binary_head(const boost::json::object& header);

struct parsed_frame {
  boost::json::object header;
  std::size_t payload_offset = 0;  // the payload is frame[payload_offset..]
  std::string_view error_code;     // empty when parsed
  std::string_view error_message;
  explicit operator bool() const { return error_code.empty(); }
};

/// Splits a frame into header and payload offset; on a malformed frame,
/// `error_code` is `bad_frame` or `bad_json`.
parsed_frame parse_binary_frame(std::string_view frame);

}  // namespace drover::net
