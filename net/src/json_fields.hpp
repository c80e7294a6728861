#pragma once
// Small readers and writers shared by the runtime protocols.
#include <boost/beast/core/detail/base64.hpp>
#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "drover/actors/remote_sink.hpp"

namespace drover::net {

/// A non-negative integer field, whichever way JSON stored it.
inline std::optional<std::uint64_t> uint_field(const boost::json::object& o, const char* name) {
  auto v = o.if_contains(name);
  if (!v) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return std::nullopt;
}

inline std::string to_base64(const core::bytes& b) {
  namespace base64 = boost::beast::detail::base64;
  std::string out(base64::encoded_size(b.size()), '\0');
  out.resize(base64::encode(out.data(), b.data(), b.size()));
  return out;
}

/// Decodes base64 (with padding); nothing if it is not valid base64.
inline std::optional<std::string> from_base64(std::string_view text) {
  namespace base64 = boost::beast::detail::base64;
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(base64::decoded_size(text.size()), '\0');
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') ++padding;
  auto [written, read] = base64::decode(out.data(), text.data(), text.size());
  if (read < text.size() - padding) return std::nullopt;  // stopped at a character outside the alphabet
  out.resize(written);
  return out;
}

/// Milliseconds from `now` (steady_clock's) until a scheduler deadline (0 if passed).
inline std::int64_t ms_left(core::time_point deadline, std::chrono::steady_clock::duration now) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.time_since_epoch() - now);
  return std::max<std::int64_t>(0, left.count());
}
inline std::int64_t ms_left(core::time_point deadline) {
  return ms_left(deadline, std::chrono::steady_clock::now().time_since_epoch());
}

/// A task for the text runtime modes (SSE, long-poll): payload in base64.
inline boost::json::object describe_task(const actors::remote_task& t) {
  const auto& item = t.item;
  return boost::json::object{{"task", item.id.value},    {"lease", item.lease.value},
                             {"slot", item.slot},        {"attempt", item.attempt},
                             {"queue", t.queue},         {"deadline_ms", ms_left(item.deadline)},
                             {"payload_base64", to_base64(item.payload)}};
}

}  // namespace drover::net
