// Micro benchmark of slicing a message into its records' payloads, as every
// session does with each message it reads: /0 a buffer whose slices take an
// allocation each (any shared buffer), /1 a string adopted whole, whose
// slices come from chunks it keeps.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "drover/core/bytes.hpp"

namespace {

using drover::core::bytes;

constexpr std::size_t records = 256, payload = 64, stride = payload + 40;  // a task record's size

void BM_payloads_sliced_from_a_message_of_256_records(benchmark::State& state) {
  const bool adopted = state.range(0) != 0;
  const std::string text(records * stride, 'x');
  std::vector<bytes> slices;
  slices.reserve(records);
  for (auto _ : state) {
    bytes message = adopted ? bytes::adopt(std::string(text)) : bytes::copy_from(text);
    for (std::size_t i = 0; i < records; ++i) slices.push_back(message.slice(i * stride + 40, payload));
    benchmark::DoNotOptimize(slices.data());
    slices.clear();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * records));
}

}  // namespace

BENCHMARK(BM_payloads_sliced_from_a_message_of_256_records)->Arg(0)->Arg(1);
