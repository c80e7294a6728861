#include "binary_frame.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace drover::net {

std::string binary_head(const boost::json::object& header) {
  const std::string h = boost::json::serialize(header);
  std::string head(4 + h.size(), '\0');
  const auto n = static_cast<std::uint32_t>(h.size());
  head[0] = static_cast<char>(n >> 24), head[1] = static_cast<char>(n >> 16);
  head[2] = static_cast<char>(n >> 8), head[3] = static_cast<char>(n);
  h.copy(head.data() + 4, h.size());
  return head;
}

parsed_frame parse_binary_frame(std::string_view frame) {
  parsed_frame out;
  if (frame.size() < 4) {
    out.error_code = "bad_frame", out.error_message = "a binary frame starts with a 4-byte header length";
    return out;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(frame.data());
  const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
  if (len > frame.size() - 4 || len > frame_header_bytes_max) {
    out.error_code = "bad_frame", out.error_message = "header length beyond the frame";
    return out;
  }
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(frame.substr(4, len), ec);
  if (ec || !v.is_object()) {
    out.error_code = "bad_json", out.error_message = "the frame header must be a JSON object";
    return out;
  }
  out.header = std::move(v.as_object());
  out.payload_offset = 4 + len;
  return out;
}

}  // namespace drover::net
