#pragma once
// The consumers of one queue that hold credit, with an O(1) pick: no scan
// over consumers, whatever their number.
//  - round_robin: one ring; pick the front and rotate it to the back.
//  - least_loaded: buckets by in-flight count; pick from the lowest
//    non-empty bucket (ring within it). Finding that bucket costs at most the
//    spread of in-flight counts, bounded by consumer capacity, never by the
//    number of consumers.
#include <cassert>
#include <cstdint>
#include <vector>

#include "drover/core/intrusive_list.hpp"

namespace drover::core {

enum class balance_policy : std::uint8_t { round_robin, least_loaded };

/// One consumer's membership in one queue's consumer_set.
struct subscription {
  std::uint32_t consumer = 0;  // consumer index
  std::uint32_t queue = 0;     // queue index
  std::uint32_t bucket = 0;
  bool member = false;
  subscription* prev = nullptr;
  subscription* next = nullptr;
};

class consumer_set {
 public:
  /// Loads at or above this share the last bucket (then ties rotate).
  static constexpr std::uint32_t bucket_count_max = 4096;

  explicit consumer_set(balance_policy policy) : policy_(policy), buckets_(1) {}

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  balance_policy policy() const { return policy_; }

  void insert(subscription& sub, std::uint32_t load) {
    assert(!sub.member);
    sub.bucket = bucket_for(load);
    if (sub.bucket >= buckets_.size()) buckets_.resize(sub.bucket + 1);
    buckets_[sub.bucket].push_back(sub);
    if (sub.bucket < lowest_) lowest_ = sub.bucket;
    sub.member = true;
    ++size_;
  }

  void erase(subscription& sub) {
    assert(sub.member);
    buckets_[sub.bucket].erase(sub);
    sub.member = false;
    --size_;
  }

  /// The consumer's in-flight count changed.
  void set_load(subscription& sub, std::uint32_t load) {
    if (!sub.member || bucket_for(load) == sub.bucket) return;
    erase(sub);
    insert(sub, load);
  }

  /// The next consumer to receive a task, or null when the set is empty.
  subscription* pick() {
    if (size_ == 0) return nullptr;
    while (buckets_[lowest_].empty()) {
      ++lowest_;
      assert(lowest_ < buckets_.size());
    }
    auto& bucket = buckets_[lowest_];
    subscription* chosen = bucket.front();
    bucket.rotate();
    return chosen;
  }

 private:
  std::uint32_t bucket_for(std::uint32_t load) const {
    if (policy_ == balance_policy::round_robin) return 0;
    return load < bucket_count_max ? load : bucket_count_max - 1;
  }

  balance_policy policy_;
  std::vector<intrusive_list<subscription>> buckets_;
  std::uint32_t lowest_ = 0;
  std::size_t size_ = 0;
};

}  // namespace drover::core
