#pragma once
#include <string>

namespace drover::apps {

struct serve_options {
  std::string config_file;  // empty: built-in defaults
  std::string listen;       // "address:port" overriding the file
};

/// `drover serve`: a node with the HTTP gateway until SIGINT or SIGTERM.
int run_serve(const serve_options& options);

}  // namespace drover::apps
