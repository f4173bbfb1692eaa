// SPDX-License-Identifier: Apache-2.0
// HttpHandler: the HTTP phase of one accepted TCP connection (the TLS handshake when TLS is on,
// one request, then an answer, a refusal or the WebSocket upgrade). It knows no sessions: an
// upgraded WebSocket is handed to the SessionRegistry (Context::registry), which admits it.
//
// Upgrade checks, in order, all before any 101: header size/count limits (431), path (404),
// Origin exact-match allowlist (403; a missing Origin only with origins.allow_missing),
// subprotocol `mana.ssh.v1` offered (400) - the response selects it; permessage-deflate stays
// off; a gateway that is stopping answers 503 (a draining one still upgrades: resumes arrive).
// /healthz (draining: drain_health_status, stopping: 503) and /metrics are answered on plain GETs,
// /debug/sessions only from loopback (the real client address) and only when enabled.
// Connections still in the HTTP phase are capped globally and per IP
// (server.max_http_connections[_per_ip], HttpSlot: 503 and close) and bounded in time by
// server.http_timeout_ms. Behind a trusted proxy (docs/gateway.md, "Behind reverse proxies")
// the request's forwarding header names the client: the handler re-keys its slot to it (503
// over the cap) and hands the WebSocket on under that address.
#pragma once

#include <chrono>
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

// One counted HTTP-phase connection; released on upgrade or destruction. Move-only. An empty
// `ip` counts the connection globally only, until assign_ip() names its client.
class HttpSlot {
 public:
  HttpSlot(std::shared_ptr<HttpCounts> counts, std::string ip);
  ~HttpSlot();
  HttpSlot(HttpSlot&& o) noexcept;
  HttpSlot& operator=(HttpSlot&&) = delete;
  HttpSlot(const HttpSlot&) = delete;
  HttpSlot& operator=(const HttpSlot&) = delete;
  void release() noexcept;
  // Counts the connection under `ip` instead (no change when it is already): false, and no
  // change, when `ip` already holds `cap` connections.
  bool assign_ip(const std::string& ip, std::uint32_t cap);
  [[nodiscard]] const std::string& ip() const noexcept { return ip_; }

 private:
  std::shared_ptr<HttpCounts> counts_;
  std::string ip_;
};

// Who is on the other end of an accepted connection (client_address.hpp).
struct ClientInfo {
  boost::asio::ip::address peer;     // the TCP peer
  boost::asio::ip::address address;  // the real client address (a PROXY header's source)
  std::string key;                   // limit_key(address): per-IP limits and log lines
  const char* via = nullptr;         // "proxy_v1" / "proxy_v2" when a PROXY header named it
};

// Starts the HTTP phase on an accepted socket: over TLS when `tls` is set, plain otherwise. The
// handler keeps itself alive (shared_ptr) until it answered, refused or upgraded. `leftover`:
// bytes already read past a PROXY header (the start of the TLS or HTTP stream); `deadline`: the
// end of the HTTP phase (server.http_timeout_ms after accept).
void serve_http(Context& ctx, boost::asio::ip::tcp::socket sock, ClientInfo client, HttpSlot slot,
                boost::asio::ssl::context* tls, std::string leftover,
                std::chrono::steady_clock::time_point deadline);

}  // namespace mana::gateway
