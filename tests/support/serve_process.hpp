#pragma once
// Helpers for tests that start `drover serve` as a process: a settings file
// to hand it, and the port its banner names (it listens on 127.0.0.1:0).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

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

}  // namespace drover::test_support
