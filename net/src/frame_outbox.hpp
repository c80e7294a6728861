#pragma once
// A node session's frames waiting for its writer (frame_writer.hpp's
// write_burst takes them from the front). When the peer reads several
// records per message (a runtime's `batch`, a client's `?batch=true`), a
// small binary record queued behind another is written into the same
// message as it is queued, its head straight into that message's buffer:
// no head allocated per record, and the writer hands Beast one buffer per
// message instead of a gather list of two per record (docs/benchmarks.md).
// A message of records stays under merged_message_bytes_max, as the
// writer's merging of queued frames does.
#include <cassert>
#include <cstddef>
#include <deque>
#include <string>
#include <utility>

#include "drover/core/bytes.hpp"
#include "frame_writer.hpp"
#include "record_writer.hpp"

namespace drover::net {

class frame_outbox {
 public:
  using value_type = out_frame;

  /// Whether records share messages from now on.
  void merge_records(bool on) {
    close_open();
    merge_ = on;
  }

  /// How record heads are written from now on (the peer's `headers`).
  void write_headers(header_format f) { format_ = f; }

  /// A frame as it is (a text frame, or a record that goes alone); the
  /// records after it start a new message.
  void push(out_frame f) {
    close_open();
    frames_.push_back(std::move(f));
  }

  /// A record whose head `write_head(record_writer&)` writes (the writer
  /// adds `bytes` and the length prefix), with `body` after it.
  template <class WriteHead>
  void push_record(WriteHead&& write_head, const core::bytes& body) {
    if (!merge_ || body.size() >= merged_message_bytes_max) {
      record_writer h(format_);
      write_head(h);
      return push(out_frame{true, std::move(h).finish(body.size()), body});
    }
    if (!open_) {
      frames_.push_back(out_frame{true, {}, {}});
      open_ = true;
      open_used_ = 0;
    }
    auto& m = open_message();
    const std::size_t mark = open_used_;
    record_writer h(m, mark, format_);
    write_head(h);
    h.end(body.size());
    const std::size_t used = put_body_at(m, h.used(), body.view());
    open_used_ = used;
    if (used > merged_message_bytes_max && mark > 0) {
      // Past the message's bound: the record starts the next message.
      std::string rest(m, mark, used - mark);
      m.resize(mark);
      open_used_ = rest.size();
      frames_.push_back(out_frame{true, std::move(rest), {}});
    }
  }

  bool empty() const { return frames_.empty(); }
  std::size_t size() const { return frames_.size(); }
  /// The writer takes frames from the front (the open message, cut to its
  /// records, once it is the only one).
  out_frame& front() {
    if (open_ && frames_.size() == 1) cut_open();
    return frames_.front();
  }
  void pop_front() {
    frames_.pop_front();
    if (frames_.empty()) open_ = false;
  }
  /// A frame a failed write gives back.
  void push_front(out_frame f) {
    close_open();
    frames_.push_front(std::move(f));
  }
  void clear() {
    frames_.clear();
    open_ = false;
  }

 private:
  /// The last frame's buffer, holding whole records (push_record opens
  /// it with no separate body) and room after them.
  std::string& open_message() {
    assert(open_ && !frames_.empty() && frames_.back().body.empty());
    return frames_.back().head;
  }
  void cut_open() { open_message().resize(open_used_); }
  /// The open message takes no more records.
  void close_open() {
    if (!open_) return;
    cut_open();
    open_ = false;
  }

  std::deque<out_frame> frames_;
  bool merge_ = false;
  header_format format_ = header_format::json;
  bool open_ = false;  // frames_.back() is a message of records that takes more
  std::size_t open_used_ = 0;  // the open message's records end here; room follows
};

}  // namespace drover::net
