// Micro benchmarks of the per-record work every hop does (Google
// Benchmark): reading a record's header as the gateway and the runtime
// client do (record_header) against a parsed json::object (what they did
// before), and writing a task's head; /0 JSON headers, /1 compact ones.
// build/bin/drover_micro --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <boost/json.hpp>

#include "drover/net/binary_frame.hpp"
#include "drover/net/record_header.hpp"
#include "record_writer.hpp"

namespace {

namespace json = boost::json;

const std::string result_head = R"({"type":"result","task":1234567,"lease":7654321,"slot":4242,"bytes":16})";
const std::string task_head =
    R"({"type":"task","task":1234567,"lease":7654321,"slot":4242,"attempt":1,"queue":"bench","deadline_ms":29998,"meta":{},"bytes":64})";
const std::string submit_head = R"({"type":"submit","channel":1,"queue":"bench","bytes":64,"ref":987654})";

// The same two headers in the compact form (compact_header.hpp).
std::string without_length(std::string head) { return head.substr(4); }
const std::string compact_task_head = [] {
  drover::net::record_writer w(drover::net::header_format::compact);
  w.field("type", "task").field("task", std::uint64_t{1234567}).field("lease", std::uint64_t{7654321})
      .field("slot", std::uint64_t{4242}).field("attempt", std::uint64_t{1}).field("queue", "bench")
      .field("deadline_ms", std::uint64_t{29998}).raw("meta", "{}");
  return without_length(std::move(w).finish(64));
}();
const std::string compact_submit_head = [] {
  drover::net::record_writer w(drover::net::header_format::compact);
  w.field("type", "submit").field("channel", std::uint64_t{1}).field("queue", "bench").field("ref", std::uint64_t{987654});
  return without_length(std::move(w).finish(64));
}();
/// Argument 0: JSON headers; 1: compact.
bool compact_arg(const benchmark::State& state) { return state.range(0) != 0; }

void read_as_object(benchmark::State& state, const std::string& text, const char* key) {
  thread_local json::parser parser;
  for (auto _ : state) {
    parser.reset();
    json::error_code ec;
    parser.write(text.data(), text.size(), ec);
    const auto v = parser.release();
    benchmark::DoNotOptimize(v.as_object().if_contains(key));
  }
}

void read_as_record_header(benchmark::State& state, const std::string& text, drover::net::record_key key) {
  drover::net::record_header h;
  for (auto _ : state) {
    const bool ok = h.read(text);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(h.uint(key));
  }
}

void BM_result_header_json_object(benchmark::State& s) { read_as_object(s, result_head, "lease"); }
void BM_result_header_record_header(benchmark::State& s) { read_as_record_header(s, result_head, "lease"); }
void BM_task_header_json_object(benchmark::State& s) { read_as_object(s, task_head, "lease"); }
void BM_task_header_record_header(benchmark::State& s) { read_as_record_header(s, task_head, "lease"); }
void BM_submit_header_json_object(benchmark::State& s) { read_as_object(s, submit_head, "ref"); }
void BM_submit_header_record_header(benchmark::State& s) { read_as_record_header(s, submit_head, "ref"); }

/// The lookups the gateway makes of a submit's header: its fields, then
/// every option a submit may carry (absent here, as in most submits).
void BM_submit_header_as_the_gateway_reads_it(benchmark::State& state) {
  const std::string& submit_head = compact_arg(state) ? compact_submit_head : ::submit_head;
  drover::net::record_header h;
  constexpr drover::net::record_key options[] = {"priority", "max_attempts", "timeout_ms", "delay_ms", "ttl_ms", "idempotency_key"};
  for (auto _ : state) {
    const bool ok = h.read(submit_head);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(h.string("type"));
    benchmark::DoNotOptimize(h.uint("channel"));
    benchmark::DoNotOptimize(h.uint("ref"));
    benchmark::DoNotOptimize(h.string("queue"));
    for (const auto& o : options) benchmark::DoNotOptimize(h.contains(o));
  }
}

/// The lookups a runtime makes of a task's header (read_record, then the task's fields).
void BM_task_header_as_a_runtime_reads_it(benchmark::State& state) {
  const std::string& task_head = compact_arg(state) ? compact_task_head : ::task_head;
  drover::net::record_header h;
  for (auto _ : state) {
    const bool ok = h.read(task_head);
    benchmark::DoNotOptimize(ok);
    benchmark::DoNotOptimize(h.contains("bytes"));
    benchmark::DoNotOptimize(h.uint("bytes"));
    benchmark::DoNotOptimize(h.string("type"));
    benchmark::DoNotOptimize(h.uint("task"));
    benchmark::DoNotOptimize(h.uint("lease"));
    benchmark::DoNotOptimize(h.uint("slot"));
    benchmark::DoNotOptimize(h.uint("attempt"));
    benchmark::DoNotOptimize(h.string("queue"));
    benchmark::DoNotOptimize(h.nested("meta"));
    benchmark::DoNotOptimize(h.uint("deadline_ms"));
  }
}

/// A message of 256 result records, visited in place.
void BM_message_of_256_results(benchmark::State& state) {
  std::string message;
  for (int i = 0; i < 256; ++i) {
    drover::net::record_writer w;
    w.field("type", "result").field("task", std::uint64_t(1'000'000 + i)).field("lease", std::uint64_t(2'000'000 + i));
    message += std::move(w).finish(16);
    message.append(16, 'r');
  }
  for (auto _ : state) {
    std::size_t n = 0;
    const auto fault = drover::net::for_each_record(message, [&](const drover::net::frame_record& r) { n += *r.header.uint("lease") & 1; });
    benchmark::DoNotOptimize(fault);
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * 256);
}

void BM_task_head_record_writer(benchmark::State& state) {
  for (auto _ : state) {
    drover::net::record_writer w;
    w.field("type", "task").field("task", std::uint64_t{1234567}).field("lease", std::uint64_t{7654321})
        .field("slot", std::uint64_t{4242}).field("attempt", std::uint64_t{1}).field("queue", "bench")
        .field("deadline_ms", std::uint64_t{29998});
    auto head = std::move(w).finish(64);
    benchmark::DoNotOptimize(head);
  }
}

/// Task records as the node queues them with `batch`: each head written
/// into the message that carries it, the payload behind it (frame_outbox.hpp).
void BM_task_records_written_into_a_message(benchmark::State& state) {
  const std::string payload(64, 'p');
  std::string message;
  for (auto _ : state) {
    message.clear();
    for (std::uint64_t i = 0; i < 256; ++i) {
      drover::net::record_writer w(message, compact_arg(state) ? drover::net::header_format::compact
                                                                : drover::net::header_format::json);
      w.field("type", "task").field("task", 1'234'567 + i).field("lease", 7'654'321 + i).field("slot", std::uint64_t{4242})
          .field("attempt", std::uint64_t{1}).field("queue", "bench").field("deadline_ms", std::uint64_t{29998})
          .raw("meta", "{}");
      w.end(payload.size());
      message.append(payload);
    }
    benchmark::DoNotOptimize(message.data());
  }
  state.SetItemsProcessed(state.iterations() * 256);
}

}  // namespace

BENCHMARK(BM_result_header_json_object);
BENCHMARK(BM_result_header_record_header);
BENCHMARK(BM_task_header_json_object);
BENCHMARK(BM_task_header_record_header);
BENCHMARK(BM_submit_header_json_object);
BENCHMARK(BM_submit_header_record_header);
BENCHMARK(BM_submit_header_as_the_gateway_reads_it)->Arg(0)->Arg(1);
BENCHMARK(BM_task_header_as_a_runtime_reads_it)->Arg(0)->Arg(1);
BENCHMARK(BM_message_of_256_results);
BENCHMARK(BM_task_head_record_writer);
BENCHMARK(BM_task_records_written_into_a_message)->Arg(0)->Arg(1);
BENCHMARK_MAIN();
