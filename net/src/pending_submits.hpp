#pragma once
// What a client connection keeps of each submit (or follow) until its
// outcome is delivered: the connection's one observer hears every task with
// the index of its entry here as the tag, instead of one observer object per
// submit (an allocation and two reference counts each, and a cold object on
// every outcome). I/O thread only.
#include <cassert>
#include <cstdint>
#include <vector>

#include "drover/core/outcome.hpp"

namespace drover::net {

struct pending_submit {
  std::uint64_t channel = 0, ref = 0, seq = 0;
  std::uint64_t follows = 0;  // a follow's task id; 0 for a submit
};

class pending_submits {
 public:
  core::observer_tag add(const pending_submit& p) {
    if (free_.empty()) {
      entries_.push_back(p);
      return static_cast<core::observer_tag>(entries_.size() - 1);
    }
    const auto tag = free_.back();  // the most recently freed: still in cache
    free_.pop_back();
    entries_[tag] = p;
    return tag;
  }

  const pending_submit& operator[](core::observer_tag tag) const {
    assert(tag < entries_.size());
    return entries_[tag];
  }

  /// The entry, which is free from here on.
  pending_submit take(core::observer_tag tag) {
    assert(tag < entries_.size());
    free_.push_back(tag);
    return entries_[tag];
  }

  std::size_t size() const { return entries_.size() - free_.size(); }

 private:
  std::vector<pending_submit> entries_;
  std::vector<core::observer_tag> free_;
};

}  // namespace drover::net
