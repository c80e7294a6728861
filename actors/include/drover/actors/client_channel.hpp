#pragma once
// One channel of a client connection (`/v1/client`): its window (the most
// submissions awaiting an outcome; beyond it a submit is refused, so the
// client is throttled) and, when ordered, the outcomes held back until those
// of every earlier submission went out. Used by the gateway's client
// sessions and by the simulator's clients. Pure bookkeeping: `Outcome` is
// whatever the caller delivers (the gateway: a ready outcome frame).
#include <cassert>
#include <cstdint>
#include <deque>
#include <optional>

namespace drover::actors {

template <class Outcome>
class client_channel {
 public:
  client_channel(std::uint64_t window, bool ordered) : window_(window), ordered_(ordered) {}

  /// Whether a submit fits in the window now.
  bool has_room() const { return outstanding_ < window_; }

  /// The sequence number the next accepted submit gets.
  std::uint64_t next_seq() const { return next_seq_; }

  /// A submit was accepted: its sequence number in this channel.
  std::uint64_t submitted() {
    assert(has_room());
    ++outstanding_;
    if (ordered_) order_.emplace_back();
    return next_seq_++;
  }

  /// The outcome of submission `seq`: `deliver(Outcome&&)` runs for it, and
  /// on an ordered channel for every later one it held back, in order.
  template <class Deliver>
  void finished(std::uint64_t seq, Outcome outcome, Deliver&& deliver) {
    if (!ordered_) {
      finished_at_once();
      return deliver(std::move(outcome));
    }
    assert(outstanding_ > 0);
    --outstanding_;
    assert(seq >= first_seq_ && seq - first_seq_ < order_.size());
    order_[seq - first_seq_] = std::move(outcome);
    while (!order_.empty() && order_.front()) {
      deliver(std::move(*order_.front()));
      order_.pop_front();
      ++first_seq_;
    }
  }

  /// An unordered channel's outcome, which the caller delivers itself at
  /// once (nothing is built to hold it).
  void finished_at_once() {
    assert(!ordered_ && outstanding_ > 0);
    --outstanding_;
  }

  std::uint64_t window() const { return window_; }
  bool ordered() const { return ordered_; }
  std::uint64_t outstanding() const { return outstanding_; }
  std::size_t held_back() const {
    std::size_t n = 0;
    for (const auto& o : order_) n += o.has_value();
    return n;
  }

 private:
  std::uint64_t window_;
  bool ordered_;
  std::uint64_t outstanding_ = 0;
  std::uint64_t next_seq_ = 0;
  std::uint64_t first_seq_ = 0;          // seq of order_.front()
  std::deque<std::optional<Outcome>> order_;  // ordered only: from the oldest unanswered submission on
};

}  // namespace drover::actors
