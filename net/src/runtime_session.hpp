#pragma once
// One remote runtime over WebSocket (`/v1/runtime`): the hello/welcome
// handshake, demand, tasks as binary frames, results and failures back,
// cancellations, heartbeats and precise errors. docs/protocol.md is the
// reference; this file implements it.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>

#include "drover/net/gateway.hpp"

namespace drover::net {

/// Posts work to the gateway's I/O thread until closed (then drops it), so
/// callbacks from CAF threads never reach a stopped gateway.
class io_poster;

struct runtime_session_context {
  node& n;
  const gateway_config& config;
  /// Registers a poster the gateway closes before it stops.
  std::function<std::shared_ptr<io_poster>()> make_poster;
};

boost::asio::awaitable<void> run_runtime_session(runtime_session_context ctx, boost::beast::tcp_stream stream,
                                                 boost::beast::http::request<boost::beast::http::string_body> upgrade);

}  // namespace drover::net
