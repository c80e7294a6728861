#pragma once
// A progress report or log line a runtime sends for a task it holds, as
// every runtime transport carries it (a WebSocket text message, an entry of
// `POST /v1/runtime/notes`): checked once here, then filed in task_notes.
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "task_notes.hpp"

namespace drover::net {

constexpr std::size_t runtime_note_bytes_max = 4096;

struct runtime_note {
  bool is_progress = true;
  double fraction = 0;  // progress only
  std::string text;     // the progress note, or the log line
};

/// A note, or why it was refused (`code` as in docs/protocol.md).
struct runtime_note_read {
  std::optional<runtime_note> note;
  std::string_view code;
  std::string_view message;
};

/// Reads a message of type `progress` or `log`.
inline runtime_note_read read_runtime_note(std::string_view type, const boost::json::object& o) {
  if (type == "progress") {
    auto fraction = o.if_contains("fraction");
    const bool number = fraction && (fraction->is_double() || fraction->is_int64() || fraction->is_uint64());
    const double f = number ? fraction->to_number<double>() : -1;
    if (f < 0 || f > 1) return {std::nullopt, "invalid_argument", "progress needs a fraction from 0 to 1"};
    auto note = o.if_contains("note");
    if (note && !note->is_string()) return {std::nullopt, "invalid_argument", "a progress note is a string"};
    if (note && note->as_string().size() > runtime_note_bytes_max)
      return {std::nullopt, "too_large", "a progress note is at most 4096 bytes"};
    return {runtime_note{true, f, note ? std::string(note->as_string()) : std::string()}, {}, {}};
  }
  auto line = o.if_contains("line");
  if (!line || !line->is_string()) return {std::nullopt, "invalid_argument", "log needs a string line"};
  if (line->as_string().size() > runtime_note_bytes_max) return {std::nullopt, "too_large", "a log line is at most 4096 bytes"};
  return {runtime_note{false, 0, std::string(line->as_string())}, {}, {}};
}

inline void file_runtime_note(task_notes& notes, std::uint64_t task, runtime_note&& n) {
  if (n.is_progress) {
    notes.progress(task, n.fraction, std::move(n.text));
  } else {
    notes.log(task, std::move(n.text));
  }
}

}  // namespace drover::net
