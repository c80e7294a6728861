#include "drover/sim/trace.hpp"

namespace drover::sim {

void trace::add(std::string_view line) {
  auto mix = [this](unsigned char c) {
    hash_ ^= c;
    hash_ *= 0x100000001b3ull;
  };
  for (const char c : line) mix(static_cast<unsigned char>(c));
  mix('\n');
  ++events_;
  if (keep_) lines_.emplace_back(line);
}

}  // namespace drover::sim
