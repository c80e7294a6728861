#pragma once
// A request target split into path segments and query parameters, both
// percent-decoded. Malformed escapes make the target invalid (400).
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover::net {

struct http_target {
  std::vector<std::string> segments;
  std::vector<std::pair<std::string, std::string>> query;

  const std::string* param(std::string_view name) const {
    for (const auto& [k, v] : query)
      if (k == name) return &v;
    return nullptr;
  }
};

std::optional<std::string> percent_decode(std::string_view in);
std::optional<http_target> parse_target(std::string_view target);

/// A whole unsigned number in [min, max], or nothing.
template <class T>
std::optional<T> parse_number(std::string_view text, T min, T max) {
  T value{};
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc{} || ptr != end || text.empty() || value < min || value > max) return std::nullopt;
  return value;
}

}  // namespace drover::net
