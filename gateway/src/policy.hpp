// Target policy: default-deny allowlist of host names and addresses/CIDRs with ports.
//
// Order of checks for one channel open (every open is checked, nothing is cached):
//   1. precheck(): host syntax, the token's `targets` claim, and whether any rule allows the
//      port at all (no DNS query for a target that cannot be allowed).
//   2. The host resolves the name once (getaddrinfo semantics through the Asio resolver), so odd
//      spellings (127.1, 2130706433, 0x7f.1, [::ffff:127.0.0.1], 0.0.0.0, "localhost.") become
//      the addresses they are.
//   3. check_resolved(): every resolved address (IPv4-mapped IPv6 normalised to IPv4) must be
//      allowed: either an address/CIDR rule with the port contains it, or a host-name rule
//      with the port names the requested host AND the address is not special (loopback,
//      link-local incl. 169.254.169.254, private, unspecified, multicast, reserved,
//      documentation, NAT64/6to4). One denied address denies the open.
//   4. The relay connects to exactly the returned endpoints; the name is never resolved again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "config.hpp"

namespace mana::gateway {

struct PolicyDecision {
  bool allowed = false;
  std::string reason;  // metric label: bad_host, token_target, port, address, resolve
  std::string detail;  // for logs (no secrets): which rule/address
  std::vector<boost::asio::ip::tcp::endpoint> endpoints;  // allowed: connect to exactly these
};

class Policy {
 public:
  explicit Policy(const Config& cfg) : rules_(cfg.targets) {}

  // `host` is open.target.host as sent. On success `resolve_name` is the string to resolve.
  [[nodiscard]] PolicyDecision precheck(const std::string& host, std::uint16_t port,
                                        const std::optional<std::vector<std::string>>& claims,
                                        std::string& resolve_name) const;
  [[nodiscard]] PolicyDecision check_resolved(
      const std::string& resolve_name, std::uint16_t port,
      const std::vector<boost::asio::ip::address>& addresses) const;

  // Exposed for tests / logs.
  static boost::asio::ip::address normalise(const boost::asio::ip::address& a);
  static bool is_special(const boost::asio::ip::address& a);
  static bool contains(const boost::asio::ip::address& net, unsigned prefix,
                       const boost::asio::ip::address& a);

 private:
  std::vector<TargetRule> rules_;
};

}  // namespace mana::gateway
