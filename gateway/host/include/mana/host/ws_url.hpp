// SPDX-License-Identifier: Apache-2.0
// WsUrl: a ws:// or wss:// URL split into what a client's WebSocket handshake needs. The one URL
// parser of the clients that connect to a gateway (mana-proxy --url, mana-bench --connect).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mana::host {

struct WsUrl {
  bool tls = false;
  std::string host;  // without brackets for IPv6 literals
  std::string port;  // numeric, 1..65535, defaulted from the scheme (80 / 443)
  std::string path;  // starts with '/', query kept
  // Host header value: host[:port] with IPv6 brackets, port omitted when it is the default.
  [[nodiscard]] std::string host_header() const;
};

// Parses "ws://host[:port][/path][?query]" and "wss://...". User info and fragments are refused
// (a token must never travel in a URL). Returns an error message, or nullopt on success (then
// `out` holds the URL; on error `out` is unchanged).
std::optional<std::string> parse_ws_url(std::string_view text, WsUrl& out);

// The request target of a resume's reconnect (PROTOCOL.md §9.8): `path` (WsUrl::path, query
// kept) with the query parameter `route=<route>` added, or replacing an existing `route`
// parameter. A `route` that is not a route id (core::is_route_id) leaves `path` unchanged. The
// resume token never goes into a URL.
[[nodiscard]] std::string with_route(std::string_view path, std::string_view route);

}  // namespace mana::host
