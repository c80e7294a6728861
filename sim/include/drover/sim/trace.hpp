#pragma once
// The event trace of one simulated run: every event as a line, hashed as it
// is added (FNV-1a, 64 bits), so two runs of one seed compare by hash; the
// lines are kept only when asked for (--trace FILE).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace drover::sim {

class trace {
 public:
  explicit trace(bool keep_lines = false) : keep_(keep_lines) {}

  void add(std::string_view line);
  std::uint64_t hash() const { return hash_; }
  std::uint64_t events() const { return events_; }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  bool keep_;
  std::uint64_t hash_ = 0xcbf29ce484222325ull;
  std::uint64_t events_ = 0;
  std::vector<std::string> lines_;
};

}  // namespace drover::sim
