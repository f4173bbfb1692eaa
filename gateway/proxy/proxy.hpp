// mana-proxy: stdin/stdout <-> one `tcp` channel of a mana.ssh.v1 session, driven by the core's
// ClientSession over a Boost.Beast WebSocket client (ws:// or wss://).
//
// Invariants
//   P1  Everything protocol happens in core::ClientSession; this layer only moves bytes, arms
//       one timer at next_timeout() and owns reconnect backoff.
//   P2  stdin is read only up to the channel's available send credit, so the replay buffer
//       (unacknowledged bytes kept for resume) never exceeds the server's window.
//   P3  Credit for target data is returned (consume) only after the bytes were written to
//       stdout: a blocked stdout stops the gateway from reading the target.
//   P4  At most one WebSocket write is in flight; the outbound queue size is the `transport`
//       pause reason (high/low water marks).
//   P5  Exactly one transport is current; callbacks from older transports (generation
//       numbers) are ignored.
#pragma once

#include <string>

#include <boost/asio/io_context.hpp>

#include "options.hpp"

namespace mana::proxy {

// Runs until the session ends. Returns the process exit status (0 normal end, 1 error).
int run_proxy(boost::asio::io_context& io, const Options& opt, const std::string& token);

}  // namespace mana::proxy
