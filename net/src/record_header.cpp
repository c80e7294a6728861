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
    h->fields_[h->count_++] = record_header::field{key, string, bits, type};
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

bool record_header::read(std::string_view text) {
  // One parser per thread: constructing one per header would cost more than the parse.
  thread_local json::basic_parser<record_header_reader> parser{json::parse_options{}};
  text_ = text;
  count_ = 0;
  overflow_ = false;
  owned_.clear();
  parsed_.reset();
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
  // The last of equal keys wins, as in a parsed object.
  for (std::size_t i = count_; i-- > 0;)
    if (fields_[i].key == key) return fields_[i];
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

std::optional<std::uint64_t> record_header::uint(std::string_view key) const {
  const auto f = find(key);
  if (!f || f->type != kind::uint) return std::nullopt;
  return f->bits;
}

std::optional<std::string_view> record_header::string(std::string_view key) const {
  const auto f = find(key);
  if (!f || f->type != kind::string) return std::nullopt;
  return f->string;
}

std::optional<bool> record_header::boolean(std::string_view key) const {
  const auto f = find(key);
  if (!f || f->type != kind::boolean) return std::nullopt;
  return f->bits != 0;
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
