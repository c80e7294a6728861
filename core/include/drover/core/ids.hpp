#pragma once
// Strong ids: a task_id cannot be passed where a lease_id is expected.
#include <compare>
#include <cstdint>
#include <functional>

namespace drover::core {

template <class Tag, class Rep = std::uint64_t>
struct strong_id {
  using rep = Rep;
  Rep value{};

  constexpr strong_id() = default;
  constexpr explicit strong_id(Rep v) : value(v) {}
  constexpr bool valid() const { return value != Rep{}; }
  friend constexpr auto operator<=>(const strong_id&, const strong_id&) = default;
};

using task_id = strong_id<struct task_id_tag>;
using lease_id = strong_id<struct lease_id_tag>;
using consumer_id = strong_id<struct consumer_id_tag>;

}  // namespace drover::core

template <class Tag, class Rep>
struct std::hash<drover::core::strong_id<Tag, Rep>> {
  std::size_t operator()(const drover::core::strong_id<Tag, Rep>& id) const noexcept {
    // splitmix64 finaliser: sequential ids spread over the buckets.
    std::uint64_t x = static_cast<std::uint64_t>(id.value);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<std::size_t>(x ^ (x >> 31));
  }
};
