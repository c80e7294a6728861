#pragma once
// The name a runtime gives itself (the WebSocket hello's `runtime`, a first
// long-poll claim's, an SSE stream's `runtime=`): for operators only, in
// logs and `GET /v1/runtimes`, so a long one is cut rather than refused.
#include <cstddef>
#include <string>
#include <string_view>

namespace drover::net {

inline constexpr std::size_t runtime_name_max = 256;

inline std::string runtime_name(std::string_view given) { return std::string(given.substr(0, runtime_name_max)); }

}  // namespace drover::net
