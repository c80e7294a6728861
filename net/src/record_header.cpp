#include "drover/net/record_header.hpp"

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
    h->push_field(key, type, bits, string);
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

}  // namespace

void record_header::clear(std::string_view text) {
  text_ = text;
  count_ = 0;
  keys_ = 0;
  overflow_ = false;
  owned_.clear();
  parsed_.reset();
}

bool record_header::read_plain(std::string_view text) {
  auto add = [this](std::string_view key, kind type, std::uint64_t bits, std::string_view string) {
    if (count_ == inline_fields) return false;  // the parser's overflow path
    push_field(key, type, bits, string);
    return true;
  };
  return plain_scan(text).object(add);
}

bool record_header::read(std::string_view text) {
  clear(text);
  if (read_plain(text)) return true;
  return read_with_parser(text);
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
  if (const field* f = inline_field(key)) return *f;
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

const json::value* record_header::nested(std::string_view key) const {
  static const json::value empty_object_value = json::object(), empty_array_value = json::array();
  const auto f = find(key);
  if (!f || f->type != kind::nested) return nullptr;
  if (f->bits == empty_object) return &empty_object_value;
  if (f->bits == empty_array) return &empty_array_value;
  return object().if_contains(key);
}

const json::object& record_header::object() const {
  if (!parsed_) {
    json::error_code ec;
    parsed_ = json::parse(text_, ec);
    // read() accepted the text as an object, so this parse cannot fail.
    assert(!ec && parsed_->is_object());
  }
  return parsed_->as_object();
}

}  // namespace drover::net
