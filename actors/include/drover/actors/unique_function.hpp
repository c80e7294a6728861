#pragma once
// A move-only void() callable: asio hands executors move-only completion
// handlers, which std::function cannot hold.
#include <memory>
#include <type_traits>
#include <utility>

namespace drover::actors {

class unique_function {
 public:
  unique_function() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function>>>
  unique_function(F&& f) : impl_(std::make_unique<model<std::decay_t<F>>>(std::forward<F>(f))) {}

  explicit operator bool() const { return impl_ != nullptr; }
  void operator()() { impl_->call(); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void call() = 0;
  };
  template <class F>
  struct model final : concept_t {
    F f;
    explicit model(F&& fn) : f(std::move(fn)) {}
    explicit model(const F& fn) : f(fn) {}
    void call() override { f(); }
  };
  std::unique_ptr<concept_t> impl_;
};

}  // namespace drover::actors
