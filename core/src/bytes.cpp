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
  return bytes(new owning_block<std::string>(std::move(text)));
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
  auto* b = new owning_block<bytes>(bytes(*this));
  b->data += offset;
  b->size = std::min(length, size() - offset);
  return bytes(b);
}

}  // namespace drover::core
