#pragma once
// The header of a binary record (binary_frame.hpp), read without building a
// JSON document. Headers are flat objects of a few short fields read once
// per task on every hop, so they fill a small table of (key, value) views
// instead: a third of the cost of a parsed `json::object`
// (docs/benchmarks.md). Nested values (a task's `meta`, an outcome's
// `error`) are parsed as JSON when asked for.
//
// A header is JSON or compact (compact_header.hpp), told by its first
// byte. A compact one is read field by field, each value's length known
// before it. For JSON, the headers drover writes are plain: printable
// ASCII keys and strings without escapes, whole numbers, true/false/null,
// empty {} and []. read() scans those itself (a third of Boost.JSON's event
// parser's time, which was a fifth of the gateway thread's under load) and
// hands anything else, valid or not, to the event parser, which then
// decides; the scan accepts only what the parser accepts and gives the same
// fields (record_header_test.cpp compares the two on generated headers).
#include <array>
#include <cstdint>
#include <cstring>
#include <forward_list>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "drover/net/compact_header.hpp"

namespace drover::net {

/// Whether `text` is the literal `expected`. The length is known at compile
/// time, so the comparison is a load or two instead of a call of memcmp
/// (a record's type is checked so, once per record on every hop).
template <std::size_t N>
bool is_literal(std::optional<std::string_view> text, const char (&expected)[N]) {
  return text && text->size() == N - 1 && std::memcmp(text->data(), expected, N - 1) == 0;
}

namespace detail {
/// A bit for `key` in a header's set of keys present (record_header::keys_).
constexpr std::uint64_t key_bit(std::string_view key) {
  if (key.empty()) return 1;
  const auto first = static_cast<unsigned char>(key.front()), last = static_cast<unsigned char>(key.back());
  return std::uint64_t{1} << ((key.size() + first * 3u + last * 5u) & 63u);
}
/// key_bit() of each compact code's name: looked up per field of a compact
/// header instead of computed from the name.
inline constexpr std::array<std::uint64_t, compact::keys.size()> key_bit_by_code = [] {
  std::array<std::uint64_t, compact::keys.size()> bits{};
  for (std::size_t i = 1; i < compact::keys.size(); ++i) bits[i] = key_bit(compact::keys[i]);
  return bits;
}();
}  // namespace detail

class record_header {
 public:
  enum class kind : std::uint8_t { string, uint, negative, real, boolean, null, nested };

  record_header() = default;
  // Not copyable: fields may view strings this header owns (moves keep them).
  record_header(const record_header&) = delete;
  record_header& operator=(const record_header&) = delete;
  record_header(record_header&&) = default;
  record_header& operator=(record_header&&) = default;

  /// Reads `text`, which must outlive this header: a JSON object, or a
  /// compact header (compact_header.hpp, told by its first byte); false if
  /// it is neither.
  bool read(std::string_view text);
  /// As read(), by Boost.JSON's event parser alone: what read() falls back
  /// to for any header its own scan does not take (tests compare the two).
  bool read_with_parser(std::string_view text);

  // The accessors read every record's fields on every hop: inline here for
  // a header whose fields all fit the table, the rest out of line (find).
  // A key from the compact table is found by its code, no names compared.
  bool contains(record_key key) const { return overflow_ ? find(key.name()).has_value() : inline_field(key) != nullptr; }
  /// A non-negative whole number (as `uint_field` reads a JSON object).
  std::optional<std::uint64_t> uint(record_key key) const {
    std::optional<field> beyond;
    const field* f = typed(key, kind::uint, beyond);
    return f ? std::optional<std::uint64_t>(f->bits) : std::nullopt;
  }
  std::optional<std::string_view> string(record_key key) const {
    std::optional<field> beyond;
    const field* f = typed(key, kind::string, beyond);
    return f ? std::optional<std::string_view>(f->string) : std::nullopt;
  }
  std::optional<bool> boolean(record_key key) const {
    std::optional<field> beyond;
    const field* f = typed(key, kind::boolean, beyond);
    return f ? std::optional<bool>(f->bits != 0) : std::nullopt;
  }
  /// Whether any key of the compact table whose bit (1 << code) is in
  /// `codes` may be here (always, for a header past its table): lets a
  /// reader skip a set of keys that are usually absent (a submit's options)
  /// at once.
  bool may_contain_any(std::uint32_t codes) const { return overflow_ || (codes_ & codes) != 0; }
  static constexpr std::uint32_t code_bit(record_key key) { return std::uint32_t{1} << key.code; }

  /// A nested object or array (parsed on demand), or null if absent or flat.
  const boost::json::value* nested(record_key key) const;
  /// The whole header as a JSON object (parsed, or for a compact header
  /// built, on demand).
  const boost::json::object& object() const;
  std::string_view text() const { return text_; }

  /// Fields beyond this many are still found, through the parsed object.
  static constexpr std::size_t inline_fields = 12;

 private:
  friend struct record_header_reader;
  struct field {
    std::string_view key;
    std::string_view string;  // kind::string; a compact header's nested JSON text
    std::uint64_t bits = 0;   // uint, negative (two's complement), boolean; real as its bit pattern; nested: 1 = {}, 2 = []
    kind type = kind::null;
  };
  /// The field named `key`, wherever it is (out of line: the parsed object
  /// when the header overflowed its table).
  std::optional<field> find(std::string_view key) const;
  /// The field named `key` if it has this type, or null; a field from beyond
  /// the table is kept in `beyond`.
  const field* typed(record_key key, kind type, std::optional<field>& beyond) const {
    const field* f = overflow_ ? found_beyond(key.name(), beyond) : inline_field(key);
    return f && f->type == type ? f : nullptr;
  }
  /// find(), kept in `beyond`: out of line, for headers past their table.
  const field* found_beyond(std::string_view key, std::optional<field>& beyond) const;
  /// The last field named `key` in the table, or null.
  const field* inline_field(record_key key) const {
    if (key.code != 0) return by_code_[key.code] != 0 ? &fields_[by_code_[key.code] - 1] : nullptr;
    return inline_field_named(key.name());
  }
  const field* inline_field_named(std::string_view key) const {
    if (!(keys_ & key_bit(key))) return nullptr;
    for (std::size_t i = count_; i-- > 0;) {
      const auto& k = fields_[i].key;
      if (k.size() == key.size() && (key.empty() || (k.front() == key.front() && k == key))) return &fields_[i];
    }
    return nullptr;
  }
  /// A bit for `key` in `keys_`: a key whose bit is clear is not there
  /// (most lookups are for options a submit does not carry).
  static constexpr std::uint64_t key_bit(std::string_view key) { return detail::key_bit(key); }
  /// Member by member: a whole `field` built on the stack and copied was
  /// read back before its bytes were all stored (a stalled load per field).
  void push_field(std::string_view key, std::uint8_t code, kind type, std::uint64_t bits, std::string_view string) {
    keys_ |= code != 0 ? detail::key_bit_by_code[code] : key_bit(key);
    auto& f = fields_[count_++];
    f.key = key, f.string = string, f.bits = bits, f.type = type;
    by_code_[code] = count_;  // the last of a name wins, as in a JSON object
    codes_ |= std::uint32_t{1} << code;
  }
  void clear(std::string_view text);
  bool read_plain(std::string_view text);
  bool read_compact(std::string_view text);
  /// A field's value as JSON (a compact header's object() is built of them).
  static boost::json::value value_of(kind type, std::uint64_t bits, std::string_view string);

  std::string_view text_;
  std::array<field, inline_fields> fields_;
  std::uint64_t keys_ = 0;  // key_bit of every inline field
  // 1 + the index in fields_ of the last field with each code (0: none;
  // [0] collects names outside the table and is never read).
  std::array<std::uint8_t, compact::keys.size()> by_code_{};
  std::uint32_t codes_ = 0;  // a bit per code present (bit 0: names outside the table)
  static_assert(compact::keys.size() <= 32);
  std::uint8_t count_ = 0;
  bool overflow_ = false;                  // more fields than fit inline
  bool compact_ = false;                   // the compact form (compact_header.hpp), not JSON
  std::forward_list<std::string> owned_;   // keys and strings the parser unescaped
  mutable std::optional<boost::json::value> parsed_;
};

}  // namespace drover::net
