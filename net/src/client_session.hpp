#pragma once
// The WebSocket client channel (`/v1/client`): a client submits tasks and
// receives their outcomes on one connection, over several channels, each
// with its own window (most tasks outstanding) and delivery order
// (outcomes in submission order, or as they finish). docs/protocol.md is
// the reference; this file implements it.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <functional>
#include <memory>

#include "drover/net/gateway.hpp"

#include "record_writer.hpp"

namespace drover::net {

class io_poster;
class kept_outcomes;

struct client_session_context {
  node& n;
  const gateway_config& config;
  std::function<std::shared_ptr<io_poster>()> make_poster;
  bool batch = false;     // `?batch=true`: outcomes may share a message as records
  bool accepted = false;  // `?accepted=true`: each accepted submit is acknowledged with its task id
  kept_outcomes* kept = nullptr;  // where an acknowledged submit's outcome is also kept (the gateway's)
  /// Open while the gateway runs: `kept` is touched only under it (a task
  /// may end after its gateway is gone; the session's own poster closes
  /// with the connection, which is when keeping matters most).
  std::shared_ptr<io_poster> gateway_open;
  header_format headers = header_format::json;  // `?headers=compact`: how outcome records' heads are written
};

boost::asio::awaitable<void> run_client_session(client_session_context ctx, boost::beast::tcp_stream stream,
                                                boost::beast::http::request<boost::beast::http::string_body> upgrade);

}  // namespace drover::net
