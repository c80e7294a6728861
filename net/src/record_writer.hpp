#pragma once
// Writes a record head (4-byte length + JSON header) straight into a string,
// for the headers sent once per task (task, result, outcome): building a
// boost::json::object and serialising it cost more than the rest of the
// gateway's work per task (docs/benchmarks.md). Keys are the caller's
// literals; string values are escaped here. The string is sized ahead and
// written through a cursor, cut to length by finish(): appending a
// character at a time was a tenth of the gateway thread's time under load.
// A writer given a string appends its record there (the head, then the
// caller's body): records written straight into the message that carries
// them (frame_outbox.hpp), with no head of their own to allocate and move.
#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace drover::net {

class record_writer {
 public:
  /// A head of its own, which finish() hands over.
  record_writer() : out_(&own_) { start(); }
  /// A head appended to `out`, completed there by end().
  explicit record_writer(std::string& out) : out_(&out) { start(); }
  record_writer(const record_writer&) = delete;
  record_writer& operator=(const record_writer&) = delete;

  record_writer& field(std::string_view key, std::uint64_t v) { return number(key, v); }
  record_writer& field(std::string_view key, std::int64_t v) { return number(key, v); }
  record_writer& field(std::string_view key, std::uint32_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(std::string_view key, std::uint16_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(std::string_view key, std::string_view text) {
    key_(key);
    put('"');
    escape(text);
    put('"');
    return *this;
  }
  record_writer& field(std::string_view key, const char* text) { return field(key, std::string_view(text)); }
  /// A value that is already JSON (an object serialised elsewhere).
  record_writer& raw(std::string_view key, std::string_view json) {
    key_(key);
    put(json);
    return *this;
  }

  /// Completes the head where it is written: `bytes` last, then the
  /// length prefix; the string is cut to the head's end (the body follows).
  void end(std::size_t body_bytes) {
    field("bytes", std::uint64_t{body_bytes});
    put('}');
    out_->resize(used_);
    const auto n = static_cast<std::uint32_t>(used_ - begin_ - 4);
    char* length = out_->data() + begin_;
    length[0] = static_cast<char>(n >> 24), length[1] = static_cast<char>(n >> 16);
    length[2] = static_cast<char>(n >> 8), length[3] = static_cast<char>(n);
  }

  /// The head of its own: length prefix and header, `bytes` last.
  std::string finish(std::size_t body_bytes) && {
    assert(out_ == &own_ && "a writer into another string ends with end()");
    end(body_bytes);
    return std::move(own_);
  }

 private:
  void start() {
    begin_ = out_->size();
    used_ = begin_ + 4;  // the length, written by end()
    out_->resize(used_ + 156);
    put('{');
  }
  /// `n` bytes to write at the cursor, which moves past them.
  char* room(std::size_t n) {
    if (used_ + n > out_->size()) out_->resize(std::max(out_->size() * 2, used_ + n));
    char* at = out_->data() + used_;
    used_ += n;
    return at;
  }
  void put(char c) { *room(1) = c; }
  void put(std::string_view s) {
    if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
  }
  void key_(std::string_view key) {
    const bool first = used_ == begin_ + 5;  // only the length and '{' so far
    char* p = room(key.size() + (first ? 3 : 4));
    if (!first) *p++ = ',';
    *p++ = '"';
    p = std::copy(key.begin(), key.end(), p);  // literals: nothing to escape
    *p++ = '"', *p = ':';
  }
  template <class Integer>
  record_writer& number(std::string_view key, Integer v) {
    key_(key);
    char* at = room(20);  // the most a uint64's digits or an int64's sign and digits take
    auto [end, ec] = std::to_chars(at, at + 20, v);
    used_ -= static_cast<std::size_t>(at + 20 - end);
    return *this;
  }
  void escape(std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    // Runs that need no escaping (nearly all text) are copied whole.
    std::size_t clean = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      const auto u = static_cast<unsigned char>(c);
      if (c != '"' && c != '\\' && u >= 0x20) continue;  // UTF-8 passes through
      put(text.substr(clean, i - clean));
      clean = i + 1;
      if (u < 0x20) {
        const char escaped[] = {'\\', 'u', '0', '0', hex[u >> 4], hex[u & 15]};
        put(std::string_view(escaped, sizeof escaped));
      } else {
        const char escaped[] = {'\\', c};
        put(std::string_view(escaped, sizeof escaped));
      }
    }
    put(text.substr(clean));
  }

  std::string own_;
  std::string* out_;
  std::size_t begin_ = 0;  // where the head's length prefix is
  std::size_t used_ = 0;   // the cursor
};

}  // namespace drover::net
