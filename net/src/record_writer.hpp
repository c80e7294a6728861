#pragma once
// Writes a record head (4-byte length + header) straight into a string,
// for the headers sent once per task (task, result, outcome): building a
// boost::json::object and serialising it cost more than the rest of the
// gateway's work per task (docs/benchmarks.md). Keys are the caller's
// literals; string values are escaped here. The string is sized ahead and
// written through a cursor, cut to length by finish(): appending a
// character at a time was a tenth of the gateway thread's time under load.
// A writer given a string appends its record there (the head, then the
// caller's body): records written straight into the message that carries
// them (frame_outbox.hpp), with no head of their own to allocate and move.
// The header is JSON, or compact (compact_header.hpp) for a peer that asked.
#include <algorithm>
#include <cassert>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "drover/net/compact_header.hpp"

namespace drover::net {

/// How a record's header is written: JSON, or compact (compact_header.hpp)
/// for a peer that asked for it.
enum class header_format : std::uint8_t { json, compact };

/// The format's name in a hello, welcome or upgrade (`headers`).
constexpr std::string_view to_string(header_format f) { return f == header_format::compact ? "compact" : "json"; }
/// The format named `name`, if it is one.
constexpr std::optional<header_format> header_format_named(std::string_view name) {
  if (name == "json") return header_format::json;
  if (name == "compact") return header_format::compact;
  return std::nullopt;
}

class record_writer {
 public:
  /// A head of its own, which finish() hands over.
  explicit record_writer(header_format f = header_format::json) : out_(&own_), format_(f) { start(); }
  /// A head appended to `out`, completed there by end().
  explicit record_writer(std::string& out, header_format f = header_format::json) : out_(&out), format_(f) { start(); }
  /// A head written at `at` in `out`, whose bytes from `at` on are room the
  /// caller keeps track of (frame_outbox's open message): the string grows
  /// only when the head needs more, and end() leaves it as long as it is;
  /// used() is where the head ends. Cutting and regrowing the string per
  /// record cost a resize and a fill of the head's room each time.
  record_writer(std::string& out, std::size_t at, header_format f) : out_(&out), format_(f), cut_(false) {
    start_at(at);
  }
  record_writer(const record_writer&) = delete;
  record_writer& operator=(const record_writer&) = delete;

  record_writer& field(record_key key, std::uint64_t v) { return number(key, v); }
  record_writer& field(record_key key, std::int64_t v) { return number(key, v); }
  record_writer& field(record_key key, std::uint32_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(record_key key, std::uint16_t v) { return field(key, std::uint64_t{v}); }
  record_writer& field(record_key key, std::string_view text) {
    if (compact()) return counted(key, compact::tag::string, text);
    key_(key);
    put('"');
    escape(text);
    put('"');
    return *this;
  }
  record_writer& field(record_key key, const char* text) { return field(key, std::string_view(text)); }
  /// A value that is already JSON: an object or array serialised elsewhere
  /// (a compact header carries nothing else as JSON).
  record_writer& raw(record_key key, std::string_view json) {
    assert(!json.empty() && (json.front() == '{' || json.front() == '['));
    if (compact()) return counted(key, compact::tag::json, json);
    key_(key);
    put(json);
    return *this;
  }

  /// Completes the head where it is written: `bytes` last, then the
  /// length prefix; the string is cut to the head's end (the body follows).
  void end(std::size_t body_bytes) {
    field("bytes", std::uint64_t{body_bytes});
    if (!compact()) put('}');
    if (cut_) out_->resize(used_);
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

  /// Where the head ends in the string (after end(), the body goes here).
  std::size_t used() const { return used_; }

  bool compact() const { return format_ == header_format::compact; }
  /// Compact fields encoded already (repeated_fields below), copied as they are.
  record_writer& encoded(std::string_view compact_fields) {
    assert(compact());
    put(compact_fields);
    return *this;
  }
  /// The compact fields written so far, past the length and the marker.
  std::string_view fields() const { return std::string_view(*out_).substr(begin_ + 5, used_ - begin_ - 5); }

 private:
  void start() {
    begin_ = out_->size();
    used_ = begin_ + 4;  // the length, written by end()
    out_->resize(used_ + 156);
    put(compact() ? static_cast<char>(compact::marker) : '{');
  }
  void start_at(std::size_t at) {
    assert(at <= out_->size());
    begin_ = at;
    used_ = begin_ + 4;
    grow_to(used_ + 156);
    put(compact() ? static_cast<char>(compact::marker) : '{');
  }
  void grow_to(std::size_t n) {
    if (n > out_->size()) out_->resize(std::max(out_->size() * 2, n));
  }
  /// `n` bytes to write at the cursor, which moves past them.
  char* room(std::size_t n) {
    grow_to(used_ + n);
    char* at = out_->data() + used_;
    used_ += n;
    return at;
  }
  void put(char c) { *room(1) = c; }
  void put(std::string_view s) {
    if (!s.empty()) std::memcpy(room(s.size()), s.data(), s.size());
  }
  void key_(record_key key) {
    const bool first = used_ == begin_ + 5;  // only the length and '{' so far
    char* p = room(key.name().size() + (first ? 3 : 4));
    if (!first) *p++ = ',';
    *p++ = '"';
    p = std::copy(key.name().begin(), key.name().end(), p);  // literals: nothing to escape
    *p++ = '"', *p = ':';
  }
  /// A key outside the table: 0, its length and its name.
  void named_key(record_key key) {
    assert(key.code == 0);
    char* p = room(1 + compact::varint_bytes_max + key.name().size());
    char* end = p + 1 + compact::varint_bytes_max + key.name().size();
    *p++ = '\0';
    p = compact::put_varint(p, key.name().size());
    std::memcpy(p, key.name().data(), key.name().size());
    used_ -= static_cast<std::size_t>(end - (p + key.name().size()));
  }
  /// A compact string or JSON value: tag, length, bytes as they are.
  record_writer& counted(record_key key, compact::tag t, std::string_view bytes) {
    auto [base, p] = compact_field(key, t, compact::varint_bytes_max + bytes.size());
    p = compact::put_varint(p, bytes.size());
    if (!bytes.empty()) std::memcpy(p, bytes.data(), bytes.size());
    return end_compact_field(base, p + bytes.size());
  }
  /// A compact field written at a local cursor: its key (a name outside
  /// the table first, written out) and tag, with room for up to
  /// `value_bytes` after them (reserved at once: a call of room() per byte
  /// was slower than printing JSON); returns the string's start and the
  /// value's place. end_compact_field() takes the head's length from where
  /// the value ended: no reserved end stored and read back per field.
  std::pair<char*, char*> compact_field(record_key key, compact::tag t, std::size_t value_bytes) {
    if (key.code == 0) named_key(key);
    grow_to(used_ + 2 + value_bytes);
    char* const base = out_->data();
    char* p = base + used_;
    if (key.code != 0) *p++ = static_cast<char>(key.code);
    *p++ = static_cast<char>(t);
    return {base, p};
  }
  record_writer& end_compact_field(const char* base, const char* value_end) {
    used_ = static_cast<std::size_t>(value_end - base);
    return *this;
  }
  template <class Integer>
  record_writer& number(record_key key, Integer v) {
    if (compact()) {
      bool negative = false;
      if constexpr (std::is_signed_v<Integer>) negative = v < 0;
      const std::uint64_t magnitude = negative ? std::uint64_t{0} - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
      return compact_number(key, negative ? compact::tag::negative : compact::tag::uint, magnitude);
    }
    key_(key);
    char* at = room(20);  // the most a uint64's digits or an int64's sign and digits take
    auto [end, ec] = std::to_chars(at, at + 20, v);
    used_ -= static_cast<std::size_t>(at + 20 - end);
    return *this;
  }
  record_writer& compact_number(record_key key, compact::tag t, std::uint64_t magnitude) {
    auto [base, p] = compact_field(key, t, compact::varint_bytes_max);
    return end_compact_field(base, compact::put_varint(p, magnitude));
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
  header_format format_;
  bool cut_ = true;  // end() cuts the string to the head's end
};

/// Compact header fields that repeat from record to record (a task's type,
/// queue, attempt and deadline; an outcome's type, channel and state),
/// encoded once and copied whole into each head while their `Key` stays the
/// same: a batch of tasks for one runtime mostly differs only in ids. Field
/// order is free in a compact header, so the varying fields follow.
template <class Key>
class repeated_fields {
 public:
  /// The fields `write` encodes for `key`, from the last call's if its key
  /// was the same.
  template <class Write>
  std::string_view get(const Key& key, Write&& write) {
    if (!known_ || !(key == key_)) {
      std::string scratch;
      record_writer w(scratch, header_format::compact);
      write(w);
      fields_.assign(w.fields());
      key_ = key;
      known_ = true;
    }
    return fields_;
  }

 private:
  Key key_{};
  bool known_ = false;
  std::string fields_;
};

/// A record's body written at `at` in a message with room past its records
/// (record_writer's `at` form), the string grown if the room is short:
/// where the record ends.
inline std::size_t put_body_at(std::string& message, std::size_t at, std::string_view body) {
  if (at + body.size() > message.size()) message.resize(std::max(message.size() * 2, at + body.size()));
  if (!body.empty()) std::memcpy(message.data() + at, body.data(), body.size());
  return at + body.size();
}

}  // namespace drover::net
