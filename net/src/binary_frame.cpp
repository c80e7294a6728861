#include "drover/net/binary_frame.hpp"

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

std::string record_head(boost::json::object header, std::size_t body_bytes) {
  header["bytes"] = body_bytes;
  return binary_head(header);
}

record_step read_record(std::string_view message, std::size_t at, frame_record& r) {
  const std::string_view rest = message.substr(at);
  if (rest.size() < 4) return {0, {"bad_frame", "a binary record starts with a 4-byte header length"}};
  const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
  const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
  if (len > rest.size() - 4 || len > frame_header_bytes_max) return {0, {"bad_frame", "header length beyond the frame"}};
  if (!r.header.read(rest.substr(4, len))) return {0, {"bad_json", "the frame header must be a JSON object"}};
  r.body_offset = at + 4 + len;
  r.body_size = rest.size() - 4 - len;
  if (r.header.contains("bytes")) {
    auto n = r.header.uint("bytes");
    if (!n || *n > r.body_size) return {0, {"bad_frame", "record bytes beyond the message"}};
    r.body_size = *n;
  }
  return {r.body_offset + r.body_size, {}};
}

}  // namespace drover::net
