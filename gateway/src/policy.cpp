#include "policy.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "auth.hpp"

namespace mana::gateway {

namespace ip = boost::asio::ip;

namespace {

struct Net {
  const char* addr;
  unsigned prefix;
};

// Never reachable through a host-name rule; only an explicit address/CIDR rule allows them.
constexpr std::array<Net, 14> special_v4{{
    {"0.0.0.0", 8},        // "this network", unspecified
    {"10.0.0.0", 8},       // private
    {"100.64.0.0", 10},    // CGNAT
    {"127.0.0.0", 8},      // loopback
    {"169.254.0.0", 16},   // link-local, cloud metadata 169.254.169.254
    {"172.16.0.0", 12},    // private
    {"192.0.0.0", 24},     // IETF protocol assignments
    {"192.0.2.0", 24},     // documentation
    {"192.168.0.0", 16},   // private
    {"198.18.0.0", 15},    // benchmarking
    {"198.51.100.0", 24},  // documentation
    {"203.0.113.0", 24},   // documentation
    {"224.0.0.0", 4},      // multicast
    {"240.0.0.0", 4},      // reserved, broadcast
}};
constexpr std::array<Net, 12> special_v6{{
    {"::", 96},           // unspecified, loopback, IPv4-compatible
    {"64:ff9b::", 96},    // NAT64
    {"64:ff9b:1::", 48},  // local NAT64
    {"100::", 64},        // discard
    {"2001::", 23},       // IETF special (Teredo, ORCHID, ...)
    {"2001:db8::", 32},   // documentation
    {"2002::", 16},       // 6to4 (embeds any IPv4 address)
    {"fc00::", 7},        // unique local
    {"fe80::", 10},       // link-local
    {"fec0::", 10},       // site-local (deprecated)
    {"ff00::", 8},        // multicast
    {"::ffff:0:0", 96},   // IPv4-mapped (normalised before; kept for safety)
}};

bool host_syntax_ok(const std::string& h) {
  if (h.empty() || h.size() > 253) return false;
  return std::all_of(h.begin(), h.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '.' || c == '-' || c == ':' || c == '_';
  });
}

bool port_listed(const TargetRule& r, std::uint16_t port) {
  return std::find(r.ports.begin(), r.ports.end(), port) != r.ports.end();
}

PolicyDecision deny(std::string reason, std::string detail) {
  PolicyDecision d;
  d.reason = std::move(reason);
  d.detail = std::move(detail);
  return d;
}

}  // namespace

ip::address Policy::normalise(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  if (a.is_v6() && a.to_v6().scope_id() != 0) {
    ip::address_v6 v6 = a.to_v6();
    v6.scope_id(0);
    return v6;
  }
  return a;
}

bool Policy::contains(const ip::address& net, unsigned prefix, const ip::address& a) {
  if (net.is_v4() != a.is_v4()) return false;
  if (net.is_v4()) {
    const std::uint32_t n = net.to_v4().to_uint();
    const std::uint32_t x = a.to_v4().to_uint();
    const std::uint32_t mask = prefix == 0 ? 0U : ~std::uint32_t{0} << (32 - prefix);
    return (n & mask) == (x & mask);
  }
  const auto nb = net.to_v6().to_bytes();
  const auto xb = a.to_v6().to_bytes();
  unsigned bits = prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8 : bits;
    const auto mask = static_cast<std::uint8_t>(0xFF00U >> take);
    if ((nb[i] & mask) != (xb[i] & mask)) return false;
    bits -= take;
  }
  return true;
}

bool Policy::is_special(const ip::address& raw) {
  const ip::address a = normalise(raw);
  if (a.is_v4()) {
    for (const Net& n : special_v4)
      if (contains(ip::make_address(n.addr), n.prefix, a)) return true;
    return false;
  }
  for (const Net& n : special_v6)
    if (contains(ip::make_address(n.addr), n.prefix, a)) return true;
  return false;
}

PolicyDecision Policy::precheck(const std::string& host, std::uint16_t port,
                                const std::optional<std::vector<std::string>>& claims,
                                std::string& resolve_name) const {
  std::string h = host;
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (!h.empty() && h.back() == '.') h.pop_back();  // "localhost." is "localhost"
  if (!host_syntax_ok(h)) return deny("bad_host", "host name syntax");
  if (claims) {
    const std::string want = normalise_target(h, port);
    if (std::find(claims->begin(), claims->end(), want) == claims->end())
      return deny("token_target", "target not in the token's targets claim");
  }
  const bool any = std::any_of(rules_.begin(), rules_.end(),
                               [&](const TargetRule& r) { return port_listed(r, port); });
  if (!any) return deny("port", "no rule allows port " + std::to_string(port));
  resolve_name = h;
  PolicyDecision ok;
  ok.allowed = true;
  return ok;
}

PolicyDecision Policy::check_resolved(const std::string& resolve_name, std::uint16_t port,
                                      const std::vector<ip::address>& addresses) const {
  if (addresses.empty()) return deny("resolve", "no address");
  bool name_rule = false;
  for (const TargetRule& r : rules_)
    if (r.kind == TargetRule::Kind::name && r.name == resolve_name && port_listed(r, port))
      name_rule = true;
  PolicyDecision d;
  for (const ip::address& raw : addresses) {
    const ip::address a = normalise(raw);
    bool ok = false;
    for (const TargetRule& r : rules_) {
      if (r.kind == TargetRule::Kind::cidr && port_listed(r, port) &&
          contains(r.network, r.prefix, a)) {
        ok = true;
        break;
      }
    }
    if (!ok && name_rule && !is_special(a)) ok = true;
    if (!ok) return deny("address", "address " + a.to_string() + " not allowed");
    const ip::tcp::endpoint ep(a, port);
    if (std::find(d.endpoints.begin(), d.endpoints.end(), ep) == d.endpoints.end())
      d.endpoints.push_back(ep);
  }
  d.allowed = true;
  return d;
}

}  // namespace mana::gateway
