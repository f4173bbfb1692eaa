// SPDX-License-Identifier: Apache-2.0
// HttpHandler: the HTTP phase of one accepted TCP connection (the TLS handshake when TLS is on,
// one request, then an answer, a refusal or the WebSocket upgrade). It knows no sessions: an
// upgraded WebSocket is handed to the SessionRegistry (Context::registry), which admits it.
//
// Upgrade checks, in order, all before any 101: header size/count limits (431), path (404),
// Origin exact-match allowlist (403; a missing Origin only with origins.allow_missing),
// subprotocol `mana.ssh.v1` offered (400) - the response selects it; permessage-deflate stays
// off; a gateway that is stopping answers 503 (a draining one still upgrades: resumes arrive).
// /healthz (503 while draining or stopping) and /metrics are answered on plain GETs,
// /debug/sessions only from loopback and only when enabled. Connections still in the HTTP phase
// are capped globally and per IP (server.max_http_connections[_per_ip], enforced by the
// Listener with HttpSlot: 503 and close) and bounded in time by server.http_timeout_ms.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "context.hpp"

namespace mana::gateway {

// Connections still in the HTTP phase (TLS handshake, request, upgrade), globally and per IP.
// Shared with the slots so that a handler destroyed late (at io_context teardown) stays safe.
struct HttpCounts {
  std::uint32_t total = 0;
  std::map<std::string, std::uint32_t> per_ip;
};

// One counted HTTP-phase connection; released on upgrade or destruction. Move-only.
class HttpSlot {
 public:
  HttpSlot(std::shared_ptr<HttpCounts> counts, std::string ip);
  ~HttpSlot();
  HttpSlot(HttpSlot&& o) noexcept;
  HttpSlot& operator=(HttpSlot&&) = delete;
  HttpSlot(const HttpSlot&) = delete;
  HttpSlot& operator=(const HttpSlot&) = delete;
  void release() noexcept;

 private:
  std::shared_ptr<HttpCounts> counts_;
  std::string ip_;
};

// Starts the HTTP phase on an accepted socket: over TLS when `tls` is set, plain otherwise. The
// handler keeps itself alive (shared_ptr) until it answered, refused or upgraded.
void serve_http(Context& ctx, boost::asio::ip::tcp::socket sock, std::string ip, HttpSlot slot,
                boost::asio::ssl::context* tls);

}  // namespace mana::gateway
