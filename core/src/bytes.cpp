#include "drover/core/bytes.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace drover::core {

// A block that keeps an owning container alive; `data` points into it.
template <class Owner>
struct bytes::owning_block : bytes::block {
  Owner owner;
  explicit owning_block(Owner&& o) : owner(std::move(o)) {
    size = owner.size();
    data = reinterpret_cast<const std::byte*>(owner.data());
    destroy = [](block* b) { delete static_cast<owning_block*>(b); };
  }
};

// One slice of a message_block, kept in one of its chunks.
struct bytes::slice_block : bytes::block {
  message_block* parent = nullptr;
};

struct bytes::slice_chunk {
  slice_chunk* next = nullptr;
  std::uint32_t capacity = 0, used = 0;
  // The slots follow the header in the same allocation.
  slice_block* slots() {
    static_assert(sizeof(slice_chunk) % alignof(slice_block) == 0);
    return reinterpret_cast<slice_block*>(this + 1);
  }

  static slice_chunk* make(std::uint32_t capacity, slice_chunk* next) {
    void* memory = ::operator new(sizeof(slice_chunk) + capacity * sizeof(slice_block));
    auto* chunk = new (memory) slice_chunk{};
    chunk->next = next;
    chunk->capacity = capacity;
    return chunk;
  }
  static void free_all(slice_chunk* chunk) {
    while (chunk) {
      auto* next = chunk->next;
      for (std::uint32_t i = 0; i < chunk->used; ++i) chunk->slots()[i].~slice_block();
      chunk->~slice_chunk();
      ::operator delete(static_cast<void*>(chunk));
      chunk = next;
    }
  }
};

// A string adopted whole: a WebSocket message of many records, each record's
// payload a slice of it. The slices' blocks come from chunks the message
// keeps (a malloc and a free per record were most of what a slice cost) and
// are freed with it: every slice keeps the message alive anyway.
struct bytes::message_block : bytes::block {
  std::string owner;
  slice_chunk* chunks = nullptr;  // newest first

  explicit message_block(std::string&& text) : owner(std::move(text)) {
    size = owner.size();
    data = reinterpret_cast<const std::byte*>(owner.data());
    destroy = &destroy_message;
  }
  static void destroy_message(block* b) {
    auto* message = static_cast<message_block*>(b);
    slice_chunk::free_all(message->chunks);
    delete message;
  }
  static bool is(const block* b) { return b->destroy == &destroy_message; }

  // Chunks grow 4, 16, 64, then 256 slots: a message of one record costs
  // little, one of hundreds a few allocations.
  slice_block* next_slot() {
    if (!chunks || chunks->used == chunks->capacity)
      chunks = slice_chunk::make(chunks ? std::min<std::uint32_t>(chunks->capacity * 4, 256) : 4, chunks);
    return new (chunks->slots() + chunks->used++) slice_block{};
  }

  bytes slice(std::size_t offset, std::size_t length) {
    refs.fetch_add(1, std::memory_order_relaxed);  // the slice's hold on this message
    auto* s = next_slot();
    s->parent = this;
    s->data = data + offset;
    s->size = length;
    s->destroy = [](block* b) {
      auto* parent = static_cast<slice_block*>(b)->parent;
      if (parent->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) parent->destroy(parent);
    };
    return bytes(s);
  }
};

bytes bytes::copy_from(std::span<const std::byte> source) {
  if (source.empty()) return {};
  // Header and bytes in one allocation: one malloc per payload.
  void* memory = ::operator new(sizeof(block) + source.size());
  auto* b = new (memory) block{};
  auto* inline_data = static_cast<std::byte*>(memory) + sizeof(block);
  std::memcpy(inline_data, source.data(), source.size());
  b->size = source.size();
  b->data = inline_data;
  b->destroy = [](block* dead) {
    dead->~block();
    ::operator delete(static_cast<void*>(dead));
  };
  return bytes(b);
}

bytes bytes::copy_from(std::string_view text) {
  return copy_from(std::span<const std::byte>(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

bytes bytes::adopt(std::string&& text) {
  if (text.empty()) return {};
  return bytes(new message_block(std::move(text)));
}

bytes bytes::adopt(std::string&& text, std::size_t offset) {
  if (offset >= text.size()) return {};
  auto* b = new owning_block<std::string>(std::move(text));
  b->data += offset;
  b->size -= offset;
  return bytes(b);
}

bytes bytes::adopt(std::vector<std::byte>&& data) {
  if (data.empty()) return {};
  return bytes(new owning_block<std::vector<std::byte>>(std::move(data)));
}

bytes bytes::slice(std::size_t offset, std::size_t length) const {
  if (offset >= size() || length == 0) return {};
  length = std::min(length, size() - offset);
  if (message_block::is(block_)) return static_cast<message_block*>(block_)->slice(offset, length);
  auto* b = new owning_block<bytes>(bytes(*this));
  b->data += offset;
  b->size = length;
  return bytes(b);
}

}  // namespace drover::core
