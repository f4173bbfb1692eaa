// SPDX-License-Identifier: Apache-2.0
#include "mana/host/ws_url.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <system_error>

#include "mana/core/messages.hpp"

namespace mana::host {

std::string WsUrl::host_header() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  const bool default_port = (tls && port == "443") || (!tls && port == "80");
  if (!default_port) h += ":" + port;
  return h;
}

namespace {

bool valid_port(std::string_view s) {
  std::uint32_t v = 0;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  return !s.empty() && ec == std::errc{} && p == end && v >= 1 && v <= 65535;
}

}  // namespace

std::optional<std::string> parse_ws_url(std::string_view text, WsUrl& out) {
  WsUrl u;
  std::string_view rest;
  if (text.substr(0, 5) == "ws://") {
    rest = text.substr(5);
  } else if (text.substr(0, 6) == "wss://") {
    u.tls = true;
    rest = text.substr(6);
  } else {
    return "URL must start with ws:// or wss://";
  }
  if (text.find('#') != std::string_view::npos) return "URL must not have a fragment";
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  if (slash == std::string_view::npos) {
    u.path = "/";
  } else {
    // "ws://h?q" has the path "/?q". (Built by appending: g++-12 -O3 reports a false
    // -Wrestrict for std::string::insert(0, ...).)
    u.path = rest[slash] == '?' ? "/" : "";
    u.path.append(rest.substr(slash));
  }
  if (authority.find('@') != std::string_view::npos)
    return "URL must not carry user info (a token never travels in a URL)";
  if (authority.empty()) return "URL has no host";
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return "URL has an unterminated IPv6 literal";
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "URL has garbage after the IPv6 literal";
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    if (colon != std::string_view::npos) {
      if (authority.find(':') != colon) return "IPv6 literals in URLs need brackets";
      port = authority.substr(colon + 1);
      authority = authority.substr(0, colon);
    }
    u.host = std::string(authority);
  }
  if (u.host.empty()) return "URL has no host";
  const bool host_ok = std::all_of(u.host.begin(), u.host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '_';
  });
  if (!host_ok) return "URL host has invalid characters";
  if (port.empty()) {
    u.port = u.tls ? "443" : "80";
  } else {
    if (!valid_port(port)) return "URL port must be 1..65535";
    u.port = std::string(port);
  }
  out = std::move(u);
  return std::nullopt;
}

std::string with_route(std::string_view path, std::string_view route) {
  if (!core::is_route_id(route)) return std::string(path);
  const auto q = path.find('?');
  std::string out(path.substr(0, q));
  std::string_view query = q == std::string_view::npos ? std::string_view{} : path.substr(q + 1);
  char sep = '?';
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (param.empty() || param.substr(0, param.find('=')) == "route") continue;
    out += sep;
    out += param;
    sep = '&';
  }
  out += sep;
  out += "route=";
  out += route;
  return out;
}

}  // namespace mana::host
