// An example service embedding drover: it registers a handler, submits work
// from plain code and from its own coroutine, and checks every outcome.
// CI builds and runs it (exit code 0 = every task succeeded).
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdio>
#include <string>

#include "drover/drover.hpp"

using namespace drover;

namespace {

// The service's own work: count the words of a document.
asio::awaitable<task_result> count_words(task_context& ctx) {
  const auto text = ctx.payload_view();
  std::size_t words = 0;
  bool in_word = false;
  for (char c : text) {
    const bool letter = c != ' ' && c != '\n';
    words += letter && !in_word;
    in_word = letter;
  }
  co_return task_result::success(bytes::copy_from(std::to_string(words)));
}

// The service's request handler, itself a coroutine on the service's loop.
asio::awaitable<int> handle_request(node& n) {
  auto h = co_await n.async_submit("count_words", bytes::copy_from("the quick brown fox"));
  if (!h) co_return 1;
  auto done = co_await h->async_wait();
  std::printf("coroutine submit: %s words\n", done ? done->value.to_string().c_str() : "?");
  co_return done && done->value.view() == "4" ? 0 : 1;
}

}  // namespace

int main() {
  node_config config;
  config.work_limit = 8;
  auto n = node::start(config);
  if (auto ok = n->handle("count_words", count_words); !ok) {
    std::fprintf(stderr, "register failed: %s\n", ok.err().message.c_str());
    return 1;
  }

  // From plain code: submit, then block for the outcome.
  int failures = 0;
  const char* docs[] = {"one", "two words", "now three words", ""};
  const char* expected[] = {"1", "2", "3", "0"};
  for (int i = 0; i < 4; ++i) {
    auto h = n->submit("count_words", bytes::copy_from(docs[i]));
    if (!h) return 1;
    auto done = h->wait();
    const bool ok = done && done->state == task_state::succeeded && done->value.view() == expected[i];
    std::printf("plain submit %d: %s\n", i, ok ? done->value.to_string().c_str() : "WRONG");
    failures += !ok;
  }

  // From the service's own coroutine on its own io_context.
  asio::io_context service_loop;
  int coroutine_status = 1;
  asio::co_spawn(service_loop, handle_request(*n), [&](std::exception_ptr, int status) { coroutine_status = status; });
  service_loop.run();
  n->stop();
  return failures == 0 && coroutine_status == 0 ? 0 : 1;
}
