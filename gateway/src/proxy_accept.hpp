// SPDX-License-Identifier: Apache-2.0
// The PROXY protocol step of an accepted connection ([server] proxy_protocol): reads the header
// (ProxyHeaderReader) before the TLS handshake or the HTTP request, within the HTTP phase's
// deadline, and hands the socket on with the client's address and the bytes read past the
// header (the start of the client's TLS or HTTP stream). Reads are at most 512 bytes each, so a
// connection holds at most the header bound plus 512 bytes here.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include <boost/asio/ip/tcp.hpp>

#include "proxy_protocol.hpp"

namespace mana::gateway {

struct ProxyAcceptResult {
  // Empty on success; otherwise "proxy_header" (malformed, or not a PROXY header: the error
  // names which), "proxy_timeout" or "proxy_closed" (the peer went away).
  const char* reject = nullptr;
  ProxyError error = ProxyError::none;
  int version = 0;
  // The client's address: the header's source, or the peer itself (v1 UNKNOWN, v2 LOCAL, UNSPEC,
  // UNIX).
  boost::asio::ip::address client;
  std::string leftover;
};

using ProxyAcceptDone =
    std::function<void(boost::asio::ip::tcp::socket sock, ProxyAcceptResult result)>;

// Reads the header from `sock` (whose peer is `peer`) until done, an error or `deadline`; then
// calls `done` once with the socket (open on success, to be closed by the caller otherwise).
void read_proxy_header(boost::asio::ip::tcp::socket sock, const boost::asio::ip::address& peer,
                       ProxyMode mode, std::chrono::steady_clock::time_point deadline,
                       ProxyAcceptDone done);

}  // namespace mana::gateway
