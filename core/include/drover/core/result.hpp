#pragma once
// A small expected<T, error>: hot paths and actor messages return values,
// not exceptions (C++20 has no std::expected).
#include <cassert>
#include <optional>
#include <utility>
#include <variant>

#include "drover/core/errc.hpp"

namespace drover::core {

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
  result(error err) : state_(std::in_place_index<1>, std::move(err)) { assert(std::get<1>(state_).code != errc::ok); }

  bool has_value() const { return state_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(state_); }
  const T& value() const& { assert(has_value()); return std::get<0>(state_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const { assert(!has_value()); return std::get<1>(state_); }
  errc code() const { return has_value() ? errc::ok : err().code; }

 private:
  std::variant<T, error> state_;
};

template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(error err) : err_(std::move(err)) { assert(err_->code != errc::ok); }

  bool has_value() const { return !err_.has_value(); }
  explicit operator bool() const { return has_value(); }
  const error& err() const { assert(err_); return *err_; }
  errc code() const { return err_ ? err_->code : errc::ok; }

 private:
  std::optional<error> err_;
};

inline result<void> ok() { return {}; }

}  // namespace drover::core
