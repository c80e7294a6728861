#pragma once
// A doubly-linked list threaded through the elements themselves: O(1)
// push, pop and erase with no allocation. An element is in at most one list
// per pair of link members at a time.
#include <cassert>
#include <cstddef>

namespace drover::core {

template <class T, T* T::*Prev = &T::prev, T* T::*Next = &T::next>
class intrusive_list {
 public:
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  T* front() const { return head_; }
  T* back() const { return tail_; }
  static T* next_of(const T& x) { return x.*Next; }

  void push_back(T& x) {
    assert(x.*Prev == nullptr && x.*Next == nullptr && head_ != &x);
    x.*Prev = tail_;
    if (tail_) tail_->*Next = &x; else head_ = &x;
    tail_ = &x;
    ++size_;
  }

  T* pop_front() {
    T* x = head_;
    if (x) erase(*x);
    return x;
  }

  void erase(T& x) {
    assert(size_ > 0);
    if (x.*Prev) x.*Prev->*Next = x.*Next; else { assert(head_ == &x); head_ = x.*Next; }
    if (x.*Next) x.*Next->*Prev = x.*Prev; else { assert(tail_ == &x); tail_ = x.*Prev; }
    x.*Prev = nullptr;
    x.*Next = nullptr;
    --size_;
  }

  /// Moves the front element to the back (round-robin rotation).
  void rotate() {
    if (size_ < 2) return;
    T* x = head_;
    erase(*x);
    push_back(*x);
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace drover::core
