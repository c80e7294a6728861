#pragma once
// Tasks whose retryable failures used up every attempt. Bounded: beyond
// its capacity the oldest letter is dropped and counted.
#include <cstdint>
#include <deque>
#include <string>

#include "drover/core/bytes.hpp"
#include "drover/core/errc.hpp"
#include "drover/core/ids.hpp"

namespace drover::core {

struct dead_letter {
  task_id id;
  std::string queue;
  bytes payload;
  error last_error;
  std::uint16_t attempts = 0;
};

class dead_letter_store {
 public:
  explicit dead_letter_store(std::size_t capacity) : capacity_(capacity) {}

  void add(dead_letter letter) {
    if (capacity_ == 0) { ++dropped_; return; }
    if (letters_.size() == capacity_) { letters_.pop_front(); ++dropped_; }
    letters_.push_back(std::move(letter));
  }

  const std::deque<dead_letter>& letters() const { return letters_; }
  std::size_t size() const { return letters_.size(); }
  std::uint64_t dropped() const { return dropped_; }

 private:
  std::size_t capacity_;
  std::deque<dead_letter> letters_;
  std::uint64_t dropped_ = 0;
};

}  // namespace drover::core
