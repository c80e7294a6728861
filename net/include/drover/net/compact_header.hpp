#pragma once
// The compact encoding of a record header (docs/protocol.md, "Compact
// headers"): the same flat fields as the JSON header, each a key code and a
// typed value, numbers as LEB128 varints. A peer that asks for it in its
// hello (or upgrade) gets its records' headers this way; the node reads
// either form from anyone, told apart by the first byte. Writing and
// scanning a JSON header was the largest single cost of a task on every
// hop (docs/benchmarks.md): numbers printed and parsed digit by digit,
// keys and strings quoted and scanned for their end.
//
//   header = marker field*
//   field  = key value
//   key    = code (1..keys.size()-1: a name from `keys`)
//          | 0 varint(length) name-bytes
//   value  = tag data (see `tag`)
//
// The key table only ever grows at its end: codes are part of the protocol.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace drover::net::compact {

/// The first byte of a compact header: never the first byte of JSON text
/// (which starts with '{' or white space) nor of any UTF-8 sequence.
constexpr unsigned char marker = 0xC1;

enum class tag : unsigned char {
  uint = 1,      // varint
  string = 2,    // varint(length), UTF-8 bytes (any, no escaping)
  true_ = 3,     // nothing
  false_ = 4,    // nothing
  null = 5,      // nothing
  json = 6,      // varint(length), the JSON text of an object or array
  negative = 7,  // varint(-value): a whole number below zero
};

/// Key codes: the index of the name (0 is "the name follows").
inline constexpr std::array<std::string_view, 21> keys = {
    "",        "type",     "task",     "lease",        "slot",       "attempt",  "queue",
    "deadline_ms", "meta", "bytes",    "channel",      "ref",        "state",    "attempts",
    "error",   "priority", "max_attempts", "timeout_ms", "delay_ms", "ttl_ms",   "idempotency_key"};

/// The code of `name`, or 0 when it is not in the table.
constexpr std::uint8_t code_of(std::string_view name) {
  for (std::size_t i = 1; i < keys.size(); ++i)
    if (keys[i] == name) return static_cast<std::uint8_t>(i);
  return 0;
}

/// A slot for a non-empty name, collision-free over the table (checked
/// below): what a JSON header's reader finds each key's code by.
constexpr std::size_t key_slot(std::string_view name) {
  const auto first = static_cast<unsigned char>(name.front()), last = static_cast<unsigned char>(name.back());
  return (name.size() + first * 2u + last * 16u) & 63u;
}
inline constexpr std::array<std::uint8_t, 64> code_by_slot = [] {
  std::array<std::uint8_t, 64> table{};
  for (std::size_t i = 1; i < keys.size(); ++i) {
    // A name added to the table that shares a slot stops the build here:
    // pick other factors in key_slot.
    if (table[key_slot(keys[i])] != 0) throw "compact::key_slot: two names share a slot";
    table[key_slot(keys[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}();

/// code_of() at run time: one slot and one comparison.
inline std::uint8_t code_of_name(std::string_view name) {
  if (name.empty()) return 0;
  const std::uint8_t code = code_by_slot[key_slot(name)];
  return code != 0 && keys[code] == name ? code : 0;
}

/// The most bytes a uint64's varint takes.
constexpr std::size_t varint_bytes_max = 10;

/// Writes `v` as a varint at `out`; past its last byte.
inline char* put_varint(char* out, std::uint64_t v) {
  while (v >= 0x80) {
    *out++ = static_cast<char>(static_cast<unsigned char>(v) | 0x80);
    v >>= 7;
  }
  *out++ = static_cast<char>(v);
  return out;
}

}  // namespace drover::net::compact

namespace drover::net {

/// A header key: the caller's literal, with its compact code found at
/// compile time (0 for a name outside the table): how record_writer writes
/// a key and how record_header looks one up (by code, without comparing
/// names, for a name in the table).
struct record_key {
  template <std::size_t N>
  consteval record_key(const char (&literal)[N])  // NOLINT: literals convert implicitly
      : data_(literal), size_(static_cast<std::uint32_t>(N - 1)), code(compact::code_of(std::string_view(literal, N - 1))) {}
  /// A name known only at run time.
  static record_key named(std::string_view name) { return record_key(name, compact::code_of_name(name)); }
  constexpr std::string_view name() const { return {data_, size_}; }

 private:
  // 16 bytes, so a key is passed in two registers: as a string_view and a
  // code (24 bytes) it went through the stack, and reading it back right
  // after its code byte was stored stalled every field a writer wrote.
  const char* data_;
  std::uint32_t size_;

 public:
  std::uint8_t code;

 private:
  constexpr record_key(std::string_view n, std::uint8_t c) : data_(n.data()), size_(static_cast<std::uint32_t>(n.size())), code(c) {}
};
static_assert(sizeof(record_key) == 16);

}  // namespace drover::net
