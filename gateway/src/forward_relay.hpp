// SPDX-License-Identifier: Apache-2.0
// Forwarded resumes during a same-host upgrade (handover.hpp), both ends.
//
// New process, ForwardRelay: a client whose resume names a session this process does not hold
// while the old process still runs. Its WebSocket (TLS, when on, ends here) is relayed message
// by message to the old process over one end of a socket pair passed over the handover
// connection, on which this process is a WebSocket client: first the resume hello it already
// read, then everything in both directions, each message with its type (text/binary).
// Old process, serve_forwarded: the other end becomes a Connection exactly like an accepted
// client's (WebSocket accept, admission caps under the client's address, hello, resume check).
//
// Rules:
//   - One message in flight per direction: a message read from one side is written to the other
//     before the next read on that side (the queue of each direction holds one message, at most
//     session.max_frame bytes from the client, twice that from the old process).
//   - A close frame from either side is passed on with its code and reason; a transport lost on
//     either side (an abrupt end) is passed on as an abrupt end, so the old process detaches the
//     session and keeps it for a resume (a clean close would end it).
//   - The upstream handshake and every close are bounded (upstream_timeout, the client stream's
//     close wait).
// Invariants:
//   1. At most one read and one write are pending on each stream; a close is started on a stream
//      only when no write of this relay is pending on it.
//   2. The relay counts as one WebSocket connection of the client's address until it finishes.
//   3. finish() runs once and closes both sockets.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "context.hpp"
#include "handover_wire.hpp"
#include "ws_stream.hpp"

namespace mana::gateway {

class ForwardRelay : public std::enable_shared_from_this<ForwardRelay> {
 public:
  static constexpr std::chrono::milliseconds upstream_timeout{3000};

  // `first`: the resume hello as the client sent it (`text`: its message type).
  ForwardRelay(Context& ctx, WsStream client, Fd upstream, std::string first, bool text,
               std::string ip);
  ~ForwardRelay();
  ForwardRelay(const ForwardRelay&) = delete;
  ForwardRelay& operator=(const ForwardRelay&) = delete;
  void start();

 private:
  void read_client();
  void read_upstream();
  // Passes a close frame on to the other side, then finishes.
  void close_upstream(const boost::beast::websocket::close_reason& r);
  void close_client(const boost::beast::websocket::close_reason& r);
  void finish();

  Context& ctx_;
  WsStream client_;
  PlainWs upstream_;
  std::string first_;
  bool first_text_;
  std::string ip_;
  boost::beast::flat_buffer cbuf_;
  boost::beast::flat_buffer ubuf_;
  bool closing_ = false;
  bool finished_ = false;
};

// Old process: a client forwarded by the new one over `fd` (its address and Origin as the new
// process found them).
void serve_forwarded(Context& ctx, Fd fd, std::string ip, std::string origin);

}  // namespace mana::gateway
