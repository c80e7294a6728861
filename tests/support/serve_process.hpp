#pragma once
// Helpers for tests that start `drover serve` as a process: a settings file
// to hand it, the port its banner names (it listens on 127.0.0.1:0), a task
// submitted to it over HTTP, and the wait until a runtime holds it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <chrono>
#include <string>
#include <thread>
#include <unistd.h>

#include "http_client.hpp"

namespace drover::test_support {

/// Writes `text` to a file in the test's temporary folder; its path. The
/// name carries the process id: ctest runs tests in parallel, each in a
/// process of its own, and two writing one file would swap their contents.
inline std::string write_config(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + std::to_string(getpid()) + "-" + name;
  FILE* f = std::fopen(path.c_str(), "w");
  std::fputs(text.c_str(), f);
  std::fclose(f);
  return path;
}

/// The port in `drover serve`'s first line ("... 127.0.0.1:PORT ..."), or 0.
inline std::uint16_t port_from(const std::string& banner) {
  const auto colon = banner.find("127.0.0.1:");
  return colon == std::string::npos ? 0 : static_cast<std::uint16_t>(std::stoi(banner.substr(colon + 10)));
}

/// Submits `payload` to `queue` (`options`: a query string, "?max_attempts=3");
/// the new task's id.
inline std::string submit(std::uint16_t port, const std::string& queue, const std::string& payload,
                          const std::string& options = "") {
  auto r = call(port, http::verb::post, "/v1/queues/" + queue + "/tasks" + options, payload);
  EXPECT_EQ(r.status, 202u) << r.body;
  return std::to_string(r.json().at("id").to_number<std::uint64_t>());
}

/// Whether task `id` is leased to a consumer within `limit` (asked every 5 ms).
inline bool becomes_leased(std::uint16_t port, const std::string& id,
                           std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  for (auto waited = std::chrono::milliseconds(0); waited < limit; waited += std::chrono::milliseconds(5)) {
    if (call(port, http::verb::get, "/v1/tasks/" + id).json().at("state").as_string() == "leased") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace drover::test_support
