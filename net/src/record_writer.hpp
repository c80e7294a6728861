#pragma once
// Writes a record head (4-byte length + JSON header) straight into a string,
// for the headers sent once per task (task, result, outcome): building a
// boost::json::object and serialising it cost more than the rest of the
// gateway's work per task (docs/benchmarks.md). Keys are the caller's
// literals; string values are escaped here.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace drover::net {

class record_writer {
 public:
  record_writer() {
    out_.reserve(160);
    out_.append(4, '\0');  // the length, written by finish()
    out_ += '{';
  }

  record_writer& field(std::string_view key, std::uint64_t v) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
    return raw(key, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  record_writer& field(std::string_view key, std::int64_t v) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
    return raw(key, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  record_writer& field(std::string_view key, std::uint32_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(std::string_view key, std::uint16_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(std::string_view key, std::string_view text) {
    key_(key);
    out_ += '"';
    escape(text);
    out_ += '"';
    return *this;
  }
  record_writer& field(std::string_view key, const char* text) { return field(key, std::string_view(text)); }
  /// A value that is already JSON (an object serialised elsewhere).
  record_writer& raw(std::string_view key, std::string_view json) {
    key_(key);
    out_ += json;
    return *this;
  }

  /// The head: length prefix and header, `bytes` last.
  std::string finish(std::size_t body_bytes) && {
    field("bytes", std::uint64_t{body_bytes});
    out_ += '}';
    const auto n = static_cast<std::uint32_t>(out_.size() - 4);
    out_[0] = static_cast<char>(n >> 24), out_[1] = static_cast<char>(n >> 16);
    out_[2] = static_cast<char>(n >> 8), out_[3] = static_cast<char>(n);
    return std::move(out_);
  }

 private:
  void key_(std::string_view key) {
    if (out_.size() > 5) out_ += ',';
    out_ += '"';
    out_ += key;  // literals: nothing to escape
    out_ += "\":";
  }
  void escape(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    // Runs that need no escaping (nearly all text) are appended whole.
    std::size_t clean = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      const auto u = static_cast<unsigned char>(c);
      if (c != '"' && c != '\\' && u >= 0x20) continue;  // UTF-8 passes through
      out_.append(text.data() + clean, i - clean);
      clean = i + 1;
      if (u < 0x20) {
        out_ += "\\u00";
        out_ += hex[u >> 4];
        out_ += hex[u & 15];
      } else {
        out_ += '\\';
        out_ += c;
      }
    }
    out_.append(text.data() + clean, text.size() - clean);
  }

  std::string out_;
};

}  // namespace drover::net
