#pragma once
// The WebSocket every drover session and client speaks over: a plain TCP
// socket under the coalescing layer. Not beast::tcp_stream: past the
// handshake its timeouts went unused (sessions watch their peers with
// peer_watch), yet each read and write passed through its transfer
// operation, its shared state and a type-erased executor copy (5 % of the
// node's thread with 10,000 runtimes; docs/benchmarks.md). Connects and
// HTTP reads that need a timeout use a tcp_stream and release its socket.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "drover/net/coalescing_stream.hpp"

namespace drover::net {

using ws_stream = boost::beast::websocket::stream<coalescing_stream<boost::asio::ip::tcp::socket>>;

}  // namespace drover::net
