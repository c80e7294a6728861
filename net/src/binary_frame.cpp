#include "binary_frame.hpp"

#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>

#include "json_fields.hpp"

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

namespace {

/// One parser per thread, reset per header: boost::json::parse builds a
/// parser (and allocates its stack) on every call, once per task here.
boost::json::value parse_header(std::string_view text, boost::system::error_code& ec) {
  thread_local boost::json::parser parser;
  parser.reset();
  parser.write(text.data(), text.size(), ec);
  if (ec) return nullptr;
  return parser.release();
}

}  // namespace

parsed_message parse_binary_message(std::string_view message) {
  parsed_message out;
  auto fail = [&](std::string_view code, std::string_view why) {
    out.error_code = code, out.error_message = why;
    return std::move(out);
  };
  std::size_t at = 0;
  do {
    if (out.records.size() == records_per_message_max) return fail("bad_frame", "too many records in one message");
    const std::string_view rest = message.substr(at);
    if (rest.size() < 4) return fail("bad_frame", "a binary record starts with a 4-byte header length");
    const auto* p = reinterpret_cast<const unsigned char*>(rest.data());
    const std::size_t len = (std::size_t{p[0]} << 24) | (std::size_t{p[1]} << 16) | (std::size_t{p[2]} << 8) | p[3];
    if (len > rest.size() - 4 || len > frame_header_bytes_max) return fail("bad_frame", "header length beyond the frame");
    boost::system::error_code ec;
    boost::json::value v = parse_header(rest.substr(4, len), ec);
    if (ec || !v.is_object()) return fail("bad_json", "the frame header must be a JSON object");
    frame_record r{std::move(v.as_object()), at + 4 + len, rest.size() - 4 - len};
    if (r.header.contains("bytes")) {
      auto n = uint_field(r.header, "bytes");
      if (!n || *n > r.body_size) return fail("bad_frame", "record bytes beyond the message");
      r.body_size = *n;
    }
    at = r.body_offset + r.body_size;
    out.records.push_back(std::move(r));
  } while (at < message.size());
  return out;
}

}  // namespace drover::net
