// SPDX-License-Identifier: Apache-2.0
#include "client_address.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

namespace mana::gateway {

namespace {

namespace ip = boost::asio::ip;

// Clears every bit after the first `prefix` bits of `bytes`.
template <std::size_t N>
void mask(std::array<unsigned char, N>& bytes, unsigned prefix) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    const std::size_t first = i * 8;
    if (first >= prefix) {
      bytes[i] = 0;
    } else if (prefix - first < 8) {
      bytes[i] = static_cast<unsigned char>(bytes[i] & (0xFFU << (8 - (prefix - first))));
    }
  }
}

ip::address masked(const ip::address& a, unsigned prefix) {
  if (a.is_v4()) {
    auto b = a.to_v4().to_bytes();
    mask(b, prefix);
    return ip::address_v4(b);
  }
  auto b = a.to_v6().to_bytes();
  mask(b, prefix);
  return ip::address_v6(b);
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Strict address text (inet_pton forms only: no scope id, no surrounding text).
std::optional<ip::address> address_of(std::string_view s, bool allow_v4, bool allow_v6) {
  if (s.empty() || s.size() > 45) return std::nullopt;
  for (char c : s)
    if (std::isxdigit(static_cast<unsigned char>(c)) == 0 && c != '.' && c != ':')
      return std::nullopt;
  boost::system::error_code ec;
  const ip::address a = ip::make_address(std::string(s), ec);
  if (ec || (a.is_v4() && !allow_v4) || (a.is_v6() && !allow_v6)) return std::nullopt;
  return normalise_address(a);
}

bool valid_port(std::string_view s) noexcept {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v <= 65535;
}

// RFC 7239 6.3 obfuscated identifier: "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
bool obfuscated(std::string_view s) noexcept {
  if (s.size() < 2 || s.front() != '_') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '-';
  });
}

enum class Node : std::uint8_t { address, unknown, malformed };

// A node: IPv4, "[IPv6]" (each with an optional ":port"), "unknown" or an obfuscated name
// (Forwarded, RFC 7239 6); X-Forwarded-For also carries bare IPv6.
Node parse_node(std::string_view s, bool bare_v6, ip::address& out) {
  if (iequals(s, "unknown") || obfuscated(s)) return Node::unknown;
  if (s.empty()) return Node::malformed;
  if (s.front() == '[') {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos) return Node::malformed;
    const std::string_view rest = s.substr(close + 1);
    if (!rest.empty() &&
        (rest.front() != ':' || !(valid_port(rest.substr(1)) || obfuscated(rest.substr(1)))))
      return Node::malformed;
    const auto a = address_of(s.substr(1, close - 1), false, true);
    if (!a) return Node::malformed;
    out = *a;
    return Node::address;
  }
  const std::size_t colon = s.find(':');
  if (colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
    // IPv4:port (one colon; bare IPv6 has at least two).
    const std::string_view port = s.substr(colon + 1);
    if (!valid_port(port) && !obfuscated(port)) return Node::malformed;
    s = s.substr(0, colon);
    const auto a = address_of(s, true, false);
    if (!a) return Node::malformed;
    out = *a;
    return Node::address;
  }
  const auto a = address_of(s, true, bare_v6);
  if (!a) return Node::malformed;
  out = *a;
  return Node::address;
}

// The for= node of one Forwarded element ("for=192.0.2.60;proto=http;by=203.0.113.43").
Node forwarded_element(std::string_view element, ip::address& out) {
  std::optional<std::string_view> node;
  std::size_t start = 0;
  while (start <= element.size()) {
    std::size_t semi = element.find(';', start);
    if (semi == std::string_view::npos) semi = element.size();
    const std::string_view pair = trim(element.substr(start, semi - start));
    start = semi + 1;
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) return Node::malformed;
    if (!iequals(pair.substr(0, eq), "for")) continue;
    if (node) return Node::malformed;  // a parameter occurs at most once (RFC 7239 4)
    std::string_view value = pair.substr(eq + 1);
    if (!value.empty() && value.front() == '"') {
      if (value.size() < 2 || value.back() != '"') return Node::malformed;
      value = value.substr(1, value.size() - 2);
      if (value.find_first_of("\"\\") != std::string_view::npos) return Node::malformed;
    } else if (value.find_first_of("[]:\"") != std::string_view::npos) {
      return Node::malformed;  // IPv6 and ports must be quoted (RFC 7239 6)
    }
    node = value;
  }
  if (!node) return Node::unknown;  // the proxy did not say whom it forwarded for
  return parse_node(*node, false, out);
}

}  // namespace

ip::address normalise_address(const ip::address& a) {
  if (a.is_v6()) {
    ip::address_v6 v6 = a.to_v6();
    if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6);
    v6.scope_id(0);
    return v6;
  }
  return a;
}

std::string limit_key(const ip::address& client, unsigned ipv6_prefix) {
  const ip::address a = normalise_address(client);
  if (a.is_v4() || ipv6_prefix >= 128) return a.to_string();
  return masked(a, ipv6_prefix).to_string() + "/" + std::to_string(ipv6_prefix);
}

bool Cidr::contains(const ip::address& a) const {
  const ip::address n = normalise_address(a);
  if (n.is_v4() != network.is_v4()) return false;
  return masked(n, prefix) == network;
}

bool parse_cidr_block(std::string_view text, Cidr& out) {
  const std::size_t slash = text.find('/');
  const auto a = address_of(text.substr(0, slash), true, true);
  if (!a) return false;
  const unsigned bits = a->is_v4() ? 32U : 128U;
  unsigned p = bits;
  if (slash != std::string_view::npos) {
    const std::string_view ps = text.substr(slash + 1);
    if (ps.empty() || ps.size() > 3 || (ps.size() > 1 && ps.front() == '0')) return false;
    p = 0;
    for (char c : ps) {
      if (c < '0' || c > '9') return false;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > bits) return false;
  }
  out.prefix = p;
  out.network = masked(*a, p);
  return true;
}

bool TrustedProxies::contains(const ip::address& a) const {
  return std::any_of(blocks_.begin(), blocks_.end(), [&](const Cidr& c) { return c.contains(a); });
}

bool parse_forwarded_header(std::string_view text, ForwardedHeader& out) noexcept {
  if (text == "x-forwarded-for") {
    out = ForwardedHeader::x_forwarded_for;
  } else if (text == "forwarded") {
    out = ForwardedHeader::forwarded;
  } else {
    return false;
  }
  return true;
}

const char* forwarded_header_name(ForwardedHeader h) noexcept {
  return h == ForwardedHeader::forwarded ? "forwarded" : "x-forwarded-for";
}

const char* forwarded_outcome_name(ForwardedOutcome o) noexcept {
  switch (o) {
    case ForwardedOutcome::peer_untrusted:
      return "peer_untrusted";
    case ForwardedOutcome::no_header:
      return "no_header";
    case ForwardedOutcome::client:
      return "client";
    case ForwardedOutcome::all_trusted:
      return "all_trusted";
    case ForwardedOutcome::malformed:
      return "malformed";
    case ForwardedOutcome::unknown:
      return "unknown";
    case ForwardedOutcome::too_long:
      return "too_long";
  }
  return "?";
}

ClientAddress client_from_forwarded(const ip::address& peer,
                                    const std::vector<std::string_view>& values,
                                    ForwardedHeader header, const TrustedProxies& trusted,
                                    const ForwardedLimits& limits) {
  const ip::address self = normalise_address(peer);
  if (!trusted.contains(self)) return {self, ForwardedOutcome::peer_untrusted};
  std::size_t total = 0;
  for (std::string_view v : values)
    total += v.size() + 1;
  if (total > limits.max_bytes) return {self, ForwardedOutcome::too_long};
  // Several fields are one list (RFC 9110 5.3); an element never spans two fields.
  ip::address current = self;
  std::size_t hops = 0;
  for (auto field = values.rbegin(); field != values.rend(); ++field) {
    std::string_view rest = *field;
    while (!rest.empty()) {
      const std::size_t comma = rest.rfind(',');
      const std::string_view element =
          trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
      if (element.empty()) continue;  // empty list elements are ignored (RFC 9110 5.6.1)
      if (++hops > limits.max_hops) return {self, ForwardedOutcome::too_long};
      ip::address hop;
      const Node n = header == ForwardedHeader::forwarded ? forwarded_element(element, hop)
                                                          : parse_node(element, true, hop);
      if (n == Node::malformed) return {self, ForwardedOutcome::malformed};
      if (n == Node::unknown) return {self, ForwardedOutcome::unknown};
      current = hop;
      if (!trusted.contains(hop)) return {hop, ForwardedOutcome::client};
    }
  }
  if (hops == 0) return {self, ForwardedOutcome::no_header};
  return {current, ForwardedOutcome::all_trusted};
}

}  // namespace mana::gateway
