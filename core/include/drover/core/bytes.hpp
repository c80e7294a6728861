#pragma once
// Immutable, reference-counted bytes: a payload is shared, never copied, on
// its way from submitter to handler. Copying a `bytes` copies one pointer.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace drover::core {

class bytes {
 public:
  bytes() = default;
  bytes(const bytes& other) noexcept : block_(other.block_) { retain(); }
  bytes(bytes&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  bytes& operator=(const bytes& other) noexcept {
    bytes copy(other);
    swap(copy);
    return *this;
  }
  bytes& operator=(bytes&& other) noexcept {
    bytes moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~bytes() { release(); }

  /// Copies `data` once into a new shared block.
  static bytes copy_from(std::span<const std::byte> data);
  static bytes copy_from(std::string_view text);
  /// Takes ownership of the string's buffer without copying its bytes.
  static bytes adopt(std::string&& text);
  /// Takes the string's buffer and exposes its bytes from `offset` on (a
  /// frame's payload after its header), still without a copy.
  static bytes adopt(std::string&& text, std::size_t offset);
  static bytes adopt(std::vector<std::byte>&& data);
  /// `size` bytes from `offset` on, sharing this buffer (several records of
  /// one WebSocket message keep that message's buffer alive, uncopied). A
  /// string adopted whole hands out its slices without an allocation each,
  /// so slices of one such buffer are taken by one thread at a time (the
  /// session that read it); the slices themselves go anywhere.
  bytes slice(std::size_t offset, std::size_t size) const;

  const std::byte* data() const { return block_ ? block_->data : nullptr; }
  std::size_t size() const { return block_ ? block_->size : 0; }
  bool empty() const { return size() == 0; }
  std::span<const std::byte> span() const { return {data(), size()}; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data()), size()}; }
  std::string to_string() const { return std::string(view()); }
  /// How many `bytes` share this buffer (for tests: proves no copy was made).
  std::uint32_t use_count() const { return block_ ? block_->refs.load(std::memory_order_relaxed) : 0; }
  bool same_buffer(const bytes& other) const { return block_ == other.block_; }

  /// Starts loading the buffer's bookkeeping into the cache: a hint for a
  /// batch about to copy or release payloads that went cold meanwhile.
  void prefetch() const {
    if (block_) __builtin_prefetch(block_, 1);
  }

  void swap(bytes& other) noexcept { std::swap(block_, other.block_); }
  friend bool operator==(const bytes& a, const bytes& b) { return a.view() == b.view(); }

 private:
  struct block {
    std::atomic<std::uint32_t> refs{1};
    std::size_t size = 0;
    const std::byte* data = nullptr;
    void (*destroy)(block*) = nullptr;
  };
  template <class Owner>
  struct owning_block;
  struct message_block;
  struct slice_block;
  struct slice_chunk;

  explicit bytes(block* b) : block_(b) {}
  void retain() const {
    if (block_) block_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() {
    if (block_ && block_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) block_->destroy(block_);
    block_ = nullptr;
  }

  block* block_ = nullptr;
};

}  // namespace drover::core
