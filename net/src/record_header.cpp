#include "drover/net/record_header.hpp"

#include "drover/net/compact_header.hpp"

#include <bit>
#include <cassert>
#include <functional>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>

namespace drover::net {

namespace json = boost::json;

namespace {
// A nested field's bits: what an empty one was.
constexpr std::uint64_t empty_object = 1, empty_array = 2;
}  // namespace

/// Boost.JSON's event handler: top-level fields go to the header's table;
/// anything nested is only marked (its text is parsed when asked for).
struct record_header_reader {
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);

  record_header* h = nullptr;
  int depth = 0;
  bool root_is_object = false;
  std::string_view key;
  std::string key_parts, string_parts;

  /// A view that outlives the parse: into the header's text when the
  /// parser handed one out, else a copy the header keeps.
  std::string_view keep(std::string_view s) {
    // std::less: pointers into different objects compare without unspecified results.
    const char* begin = h->text_.data();
    const char* end = begin + h->text_.size();
    const std::less<const char*> before;
    if (!before(s.data(), begin) && !before(end, s.data() + s.size())) return s;
    h->owned_.emplace_front(s);
    return h->owned_.front();
  }
  std::string_view joined(std::string& parts, std::string_view last) {
    if (parts.empty()) return keep(last);
    parts.append(last);
    auto v = keep(parts);
    parts.clear();
    return v;
  }
  void add(record_header::kind type, std::uint64_t bits, std::string_view string = {}) {
    if (depth != 1) return;
    if (h->count_ == record_header::inline_fields) {
      h->overflow_ = true;
      return;
    }
    h->push_field(key, compact::code_of_name(key), type, bits, string);
  }

  /// An empty nested value (a task's `"meta":{}`) needs no parse to be given out.
  void mark_empty(std::uint64_t which) {
    if (h->count_ > 0 && h->fields_[h->count_ - 1].type == record_header::kind::nested && !h->overflow_)
      h->fields_[h->count_ - 1].bits = which;
  }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    if (depth == 0) root_is_object = true;
    if (depth == 1) add(record_header::kind::nested, 0);
    ++depth;
    return true;
  }
  bool on_object_end(std::size_t size, json::error_code&) {
    if (--depth == 1 && size == 0) mark_empty(empty_object);
    return true;
  }
  bool on_array_begin(json::error_code&) {
    if (depth == 1) add(record_header::kind::nested, 0);
    ++depth;
    return true;
  }
  bool on_array_end(std::size_t size, json::error_code&) {
    if (--depth == 1 && size == 0) mark_empty(empty_array);
    return true;
  }
  bool on_key_part(std::string_view s, std::size_t, json::error_code&) {
    if (depth == 1) key_parts.append(s);
    return true;
  }
  bool on_key(std::string_view s, std::size_t, json::error_code&) {
    if (depth == 1) key = joined(key_parts, s);
    return true;
  }
  bool on_string_part(std::string_view s, std::size_t, json::error_code&) {
    if (depth == 1) string_parts.append(s);
    return true;
  }
  bool on_string(std::string_view s, std::size_t, json::error_code&) {
    if (depth == 1) add(record_header::kind::string, 0, joined(string_parts, s));
    return true;
  }
  bool on_number_part(std::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t v, std::string_view, json::error_code&) {
    add(v >= 0 ? record_header::kind::uint : record_header::kind::negative, static_cast<std::uint64_t>(v));
    return true;
  }
  bool on_uint64(std::uint64_t v, std::string_view, json::error_code&) {
    add(record_header::kind::uint, v);
    return true;
  }
  bool on_double(double v, std::string_view, json::error_code&) {
    add(record_header::kind::real, std::bit_cast<std::uint64_t>(v));
    return true;
  }
  bool on_bool(bool v, json::error_code&) {
    add(record_header::kind::boolean, v ? 1 : 0);
    return true;
  }
  bool on_null(json::error_code&) {
    add(record_header::kind::null, 0);
    return true;
  }
  bool on_comment_part(std::string_view, json::error_code&) { return true; }
  bool on_comment(std::string_view, json::error_code&) { return true; }
};

namespace {

/// The scan of a plain header (record_header.hpp): false as soon as the
/// text is anything else, valid JSON or not, so the event parser decides.
class plain_scan {
 public:
  explicit plain_scan(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  template <class Add>
  bool object(Add&& add) {
    if (!skip_space() || *p_ != '{') return false;
    ++p_;
    if (!skip_space()) return false;
    if (*p_ == '}') return ++p_, at_end();
    for (;;) {
      std::string_view key;
      if (*p_ != '"' || !string(key) || !skip_space() || *p_ != ':') return false;
      ++p_;
      if (!skip_space() || !value(key, add) || !skip_space()) return false;
      if (*p_ == '}') return ++p_, at_end();
      if (*p_ != ',') return false;
      ++p_;
      if (!skip_space()) return false;
    }
  }

 private:
  // The loops below move a local cursor and store it once: moving the
  // member itself stored it on every byte.
  bool skip_space() {
    const char* p = p_;
    while (p != end_ && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) ++p;
    p_ = p;
    return p != end_;
  }
  bool at_end() {
    skip_space();
    return p_ == end_;
  }
  /// At the opening quote; printable ASCII up to the closing one.
  bool string(std::string_view& out) {
    const char* begin = p_ + 1;
    const char* p = begin;
    while (p != end_ && !stops_plain_string[static_cast<unsigned char>(*p)]) ++p;
    if (p == end_ || *p != '"') return false;  // escapes, controls, UTF-8: the parser's
    out = std::string_view(begin, static_cast<std::size_t>(p - begin));
    p_ = p + 1;
    return true;
  }
  /// The bytes a plain string ends at: its closing quote, or what only the
  /// parser takes (a backslash, a control character, UTF-8).
  static constexpr std::array<bool, 256> stops_plain_string = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
    return t;
  }();
  bool literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) return false;
    p_ += word.size();
    return true;
  }
  /// Up to 19 digits always fit a uint64; no sign, fraction or exponent
  /// (what follows must end the value, which the caller checks).
  bool whole_number(std::uint64_t& out) {
    const char* begin = p_;
    const char* p = begin;
    std::uint64_t v = 0;
    while (p != end_ && *p >= '0' && *p <= '9') v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
    p_ = p;
    out = v;
    const auto digits = p - begin;
    if (digits == 0 || digits > 19) return false;
    if (*begin == '0' && digits > 1) return false;  // a leading zero is not JSON
    return p == end_ || (*p != '.' && *p != 'e' && *p != 'E');
  }
  bool empty_nested(char close) {
    ++p_;
    if (!skip_space() || *p_ != close) return false;
    ++p_;
    return true;
  }
  template <class Add>
  bool value(std::string_view key, Add& add) {
    using kind = record_header::kind;
    switch (*p_) {
      case '"': {
        std::string_view s;
        return string(s) && add(key, kind::string, 0, s);
      }
      case 't':
        return literal("true") && add(key, kind::boolean, 1, {});
      case 'f':
        return literal("false") && add(key, kind::boolean, 0, {});
      case 'n':
        return literal("null") && add(key, kind::null, 0, {});
      case '{':
        return empty_nested('}') && add(key, kind::nested, empty_object, {});
      case '[':
        return empty_nested(']') && add(key, kind::nested, empty_array, {});
      default: {
        std::uint64_t v;
        return whole_number(v) && add(key, kind::uint, v, {});
      }
    }
  }

  const char* p_;
  const char* end_;
};

/// Whether `s` is well-formed UTF-8 (what the JSON parser demands of a
/// string; a compact string is taken as it is, so it is checked here).
bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p != end) {
    const unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    unsigned low = 0x80, high = 0xBF;  // the second byte's range
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, low = 0xA0;
    else if (c == 0xED) n = 2, high = 0x9F;  // no surrogates
    else if (c >= 0xE1 && c <= 0xEF) n = 2;
    else if (c == 0xF0) n = 3, low = 0x90;
    else if (c == 0xF4) n = 3, high = 0x8F;  // up to U+10FFFF
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else return false;
    if (static_cast<std::size_t>(end - p) <= n || p[1] < low || p[1] > high) return false;
    for (std::size_t i = 2; i <= n; ++i)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

/// The scan of a compact header (compact_header.hpp), after its marker:
/// false for anything malformed, so the header is refused as a bad one.
class compact_scan {
 public:
  explicit compact_scan(std::string_view text)
      : p_(reinterpret_cast<const unsigned char*>(text.data()) + 1),
        end_(reinterpret_cast<const unsigned char*>(text.data()) + text.size()) {}

  template <class Add>
  bool fields(Add&& add) {
    using kind = record_header::kind;
    using compact::tag;
    while (p_ != end_) {
      std::string_view key, s;
      std::uint8_t code = 0;
      std::uint64_t v = 0;
      if (!read_key(key, code) || p_ == end_) return false;
      switch (static_cast<tag>(*p_++)) {
        case tag::uint:
          if (!varint(v)) return false;
          add(key, code, kind::uint, v, {});
          break;
        case tag::negative:  // magnitude 1 .. 2^63
          if (!varint(v) || v == 0 || v > (std::uint64_t{1} << 63)) return false;
          add(key, code, kind::negative, std::uint64_t{0} - v, {});
          break;
        case tag::string:
          if (!counted(s) || !valid_utf8(s)) return false;
          add(key, code, kind::string, 0, s);
          break;
        case tag::true_:
          add(key, code, kind::boolean, 1, {});
          break;
        case tag::false_:
          add(key, code, kind::boolean, 0, {});
          break;
        case tag::null:
          add(key, code, kind::null, 0, {});
          break;
        case tag::json:
          if (!counted(s) || !nested_json(s, v)) return false;
          add(key, code, kind::nested, v, s);
          break;
        default:
          return false;
      }
    }
    return true;
  }

 private:
  bool varint(std::uint64_t& out) {
    // Most values (codes, lengths, small numbers) take one byte.
    if (p_ != end_ && *p_ < 0x80) return out = *p_++, true;
    std::uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return false;
      const unsigned char b = *p_++;
      if (shift == 63 && b > 1) return false;  // past 64 bits
      v |= std::uint64_t{b & 0x7Fu} << shift;
      if (b < 0x80) return out = v, true;
    }
    return false;
  }
  bool counted(std::string_view& out) {
    std::uint64_t n;
    if (!varint(n) || n > static_cast<std::uint64_t>(end_ - p_)) return false;
    out = std::string_view(reinterpret_cast<const char*>(p_), static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }
  bool read_key(std::string_view& out, std::uint8_t& code) {
    code = *p_++;
    if (code != 0) {
      if (code >= compact::keys.size()) return false;
      out = compact::keys[code];
      return true;
    }
    if (!counted(out) || !valid_utf8(out)) return false;
    code = compact::code_of_name(out);  // a table name written out in full is still that key
    return true;
  }
  /// A nested value's text must be a JSON object or array; an empty one is
  /// marked as such (`bits`) and needs no parse when asked for.
  static bool nested_json(std::string_view text, std::uint64_t& bits) {
    if (text == "{}") return bits = empty_object, true;
    if (text == "[]") return bits = empty_array, true;
    json::error_code ec;
    const auto v = json::parse(text, ec);
    bits = 0;
    return !ec && (v.is_object() || v.is_array());
  }

  const unsigned char* p_;
  const unsigned char* end_;
};

}  // namespace

void record_header::clear(std::string_view text) {
  text_ = text;
  count_ = 0;
  keys_ = 0;
  by_code_.fill(0);
  codes_ = 0;
  overflow_ = false;
  compact_ = false;
  owned_.clear();
  parsed_.reset();
}

bool record_header::read_plain(std::string_view text) {
  auto add = [this](std::string_view key, kind type, std::uint64_t bits, std::string_view string) {
    if (count_ == inline_fields) return false;  // the parser's overflow path
    push_field(key, compact::code_of_name(key), type, bits, string);
    return true;
  };
  return plain_scan(text).object(add);
}

bool record_header::read(std::string_view text) {
  clear(text);
  if (!text.empty() && static_cast<unsigned char>(text.front()) == compact::marker) return read_compact(text);
  if (read_plain(text)) return true;
  return read_with_parser(text);
}

bool record_header::read_compact(std::string_view text) {
  compact_ = true;
  // Counts and key sets are kept in locals and stored once at the end: the
  // byte-wide stores into by_code_ may alias anything, so members updated
  // per field were reloaded from memory after each of them.
  std::uint8_t count = 0;
  std::uint64_t keys = 0;
  std::uint32_t codes = 0;
  bool overflow = false;
  field* const fields = fields_.data();
  std::uint8_t* const by_code = by_code_.data();
  // Past the table the scan goes on (the rest must be well formed too);
  // those fields are found through object(), which scans again.
  auto add = [&](std::string_view key, std::uint8_t code, kind type, std::uint64_t bits, std::string_view string) {
    if (count == inline_fields) {
      overflow = true;
      return;
    }
    keys |= code != 0 ? detail::key_bit_by_code[code] : key_bit(key);
    auto& f = fields[count++];
    f.key = key, f.string = string, f.bits = bits, f.type = type;
    by_code[code] = count;  // the last of a name wins, as in a JSON object
    codes |= std::uint32_t{1} << code;
  };
  const bool ok = compact_scan(text).fields(add);
  count_ = count, keys_ = keys, codes_ = codes, overflow_ = overflow;
  return ok;
}

bool record_header::read_with_parser(std::string_view text) {
  // One parser per thread: constructing one per header would cost more than the parse.
  thread_local json::basic_parser<record_header_reader> parser{json::parse_options{}};
  clear(text);
  parser.reset();
  auto& reader = parser.handler();
  reader.h = this;
  reader.depth = 0;
  reader.root_is_object = false;
  reader.key_parts.clear(), reader.string_parts.clear();
  json::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  reader.h = nullptr;
  return !ec && used == text.size() && parser.done() && reader.root_is_object;
}

std::optional<record_header::field> record_header::find(std::string_view key) const {
  if (const field* f = inline_field_named(key)) return *f;
  if (!overflow_) return std::nullopt;
  const auto* v = object().if_contains(key);
  if (!v) return std::nullopt;
  field f{key, {}, 0, kind::nested};
  if (v->is_uint64()) {
    f.type = kind::uint, f.bits = v->as_uint64();
  } else if (v->is_int64()) {
    f.type = v->as_int64() >= 0 ? kind::uint : kind::negative, f.bits = static_cast<std::uint64_t>(v->as_int64());
  } else if (v->is_string()) {
    f.type = kind::string, f.string = v->as_string();
  } else if (v->is_bool()) {
    f.type = kind::boolean, f.bits = v->as_bool();
  } else if (v->is_double()) {
    f.type = kind::real, f.bits = std::bit_cast<std::uint64_t>(v->as_double());
  } else if (v->is_null()) {
    f.type = kind::null;
  }
  return f;
}

const record_header::field* record_header::found_beyond(std::string_view key, std::optional<field>& beyond) const {
  beyond = find(key);
  return beyond ? &*beyond : nullptr;
}

json::value record_header::value_of(kind type, std::uint64_t bits, std::string_view string) {
  switch (type) {
    case kind::string:
      return json::string(string);
    case kind::uint:
      return bits;
    case kind::negative:
      return static_cast<std::int64_t>(bits);
    case kind::real:
      return std::bit_cast<double>(bits);
    case kind::boolean:
      return bits != 0;
    case kind::null:
      return nullptr;
    case kind::nested:
      break;
  }
  if (bits == empty_object) return json::object();
  if (bits == empty_array) return json::array();
  return json::parse(string);  // a compact header's nested text, checked by its read
}

const json::value* record_header::nested(record_key key) const {
  static const json::value empty_object_value = json::object(), empty_array_value = json::array();
  const auto f = find(key.name());
  if (!f || f->type != kind::nested) return nullptr;
  if (f->bits == empty_object) return &empty_object_value;
  if (f->bits == empty_array) return &empty_array_value;
  return object().if_contains(key.name());
}

const json::object& record_header::object() const {
  if (!parsed_ && compact_) {
    json::object o;
    compact_scan(text_).fields([&](std::string_view key, std::uint8_t, kind type, std::uint64_t bits, std::string_view string) {
      o[key] = value_of(type, bits, string);
    });
    parsed_ = std::move(o);
  }
  if (!parsed_) {
    json::error_code ec;
    parsed_ = json::parse(text_, ec);
    // read() accepted the text as an object, so this parse cannot fail.
    assert(!ec && parsed_->is_object());
  }
  return parsed_->as_object();
}

}  // namespace drover::net
