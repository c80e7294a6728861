#pragma once
// A move-only void() callable: asio hands executors move-only completion
// handlers, which std::function cannot hold. Callables up to inline_size
// bytes live inside the object (no allocation per posted handler: the pool
// posts one per finished task).
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace drover::actors {

class unique_function {
 public:
  static constexpr std::size_t inline_size = 64;

  unique_function() = default;
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, unique_function>>>
  unique_function(F&& f) {  // NOLINT: implicit like std::function
    using model_type = model<std::decay_t<F>>;
    if constexpr (sizeof(model_type) <= inline_size && alignof(model_type) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<std::decay_t<F>>) {
      impl_ = new (&storage_) model_type(std::forward<F>(f));
    } else {
      impl_ = new model_type(std::forward<F>(f));
      heap_ = true;
    }
  }
  unique_function(unique_function&& other) noexcept { take(std::move(other)); }
  unique_function& operator=(unique_function&& other) noexcept {
    if (this != &other) {
      reset();
      take(std::move(other));
    }
    return *this;
  }
  unique_function(const unique_function&) = delete;
  unique_function& operator=(const unique_function&) = delete;
  ~unique_function() { reset(); }

  explicit operator bool() const { return impl_ != nullptr; }
  void operator()() { impl_->call(); }

 private:
  struct concept_t {
    virtual ~concept_t() = default;
    virtual void call() = 0;
    virtual concept_t* move_to(void* storage) noexcept = 0;  // inline models only
  };
  template <class F>
  struct model final : concept_t {
    F f;
    template <class G>
    explicit model(G&& fn) : f(std::forward<G>(fn)) {}
    void call() override { f(); }
    concept_t* move_to(void* storage) noexcept override {
      if constexpr (std::is_nothrow_move_constructible_v<F>) {
        return new (storage) model(std::move(f));
      } else {
        return nullptr;  // never inline, never called
      }
    }
  };

  void take(unique_function&& other) noexcept {
    if (!other.impl_) return;
    if (other.heap_) {
      impl_ = std::exchange(other.impl_, nullptr);
      heap_ = true;
      other.heap_ = false;
    } else {
      impl_ = other.impl_->move_to(&storage_);
      other.reset();
    }
  }

  void reset() {
    if (!impl_) return;
    if (heap_) delete impl_; else impl_->~concept_t();
    impl_ = nullptr;
    heap_ = false;
  }

  alignas(std::max_align_t) std::byte storage_[inline_size];
  concept_t* impl_ = nullptr;
  bool heap_ = false;
};

}  // namespace drover::actors
