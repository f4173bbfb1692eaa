// SPDX-License-Identifier: Apache-2.0
// The real client address behind reverse proxies, and the key per-IP limits count under.
// Sans-I/O: addresses and header values in, an address out.
//
// Trust (deny unless allowed): a forwarding header (X-Forwarded-For, or RFC 7239 Forwarded) is
// read only when the connection's peer is inside [server] trusted_proxies, and only the one
// header named by [server] forwarded_header (a client can always add the other one; which of two
// headers a proxy appended to cannot be told from the request). The chain is walked from the
// right (the hop nearest to us, written by our own proxy) to the left, skipping hops that are
// themselves trusted proxies; the first untrusted hop is the client. A chain whose walked part is
// malformed, too long, or ends in "unknown" / an obfuscated identifier gives the peer address:
// never an address the client chose. Entries left of the first untrusted hop are never parsed,
// so a client that sends its own forged header only forges a hop our proxy already vouches
// against.
//
// Limit key: IPv4 clients are counted by their address; IPv6 clients by their /ipv6_prefix
// network (default /64: one customer line or one host's privacy addresses), so a client cannot
// multiply its per-IP budget by walking through its own /64. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) are IPv4.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace mana::gateway {

// ::ffff:a.b.c.d -> a.b.c.d; IPv6 scope ids dropped.
boost::asio::ip::address normalise_address(const boost::asio::ip::address& a);

// The text per-IP limits, logs and metrics use for a client: "192.0.2.7" or "2001:db8:1:2::/64"
// (the address itself at prefix 128).
std::string limit_key(const boost::asio::ip::address& client, unsigned ipv6_prefix);

struct Cidr {
  boost::asio::ip::address network;  // host bits cleared; IPv4-mapped stored as IPv4
  unsigned prefix = 0;
  [[nodiscard]] bool contains(const boost::asio::ip::address& a) const;
};

// "10.0.0.0/8", "2001:db8::/32", "127.0.0.1" (a single address). Host bits are cleared.
bool parse_cidr_block(std::string_view text, Cidr& out);

class TrustedProxies {
 public:
  static constexpr std::size_t max_entries = 1024;

  TrustedProxies() = default;
  explicit TrustedProxies(std::vector<Cidr> blocks) : blocks_(std::move(blocks)) {}
  [[nodiscard]] bool contains(const boost::asio::ip::address& a) const;
  [[nodiscard]] bool empty() const noexcept { return blocks_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return blocks_.size(); }
  [[nodiscard]] const std::vector<Cidr>& blocks() const noexcept { return blocks_; }

 private:
  std::vector<Cidr> blocks_;
};

// [server] forwarded_header.
enum class ForwardedHeader : std::uint8_t { x_forwarded_for, forwarded };
bool parse_forwarded_header(std::string_view text, ForwardedHeader& out) noexcept;
const char* forwarded_header_name(ForwardedHeader h) noexcept;

struct ForwardedLimits {
  std::size_t max_bytes = 4096;  // all values of the header together
  std::size_t max_hops = 32;     // entries walked
};

// Why the result is what it is (logs, tests).
enum class ForwardedOutcome : std::uint8_t {
  peer_untrusted,  // the peer is not a trusted proxy: the header is not read
  no_header,       // trusted peer, no header: the peer is the client
  client,          // the first untrusted hop from the right
  all_trusted,     // every hop is a trusted proxy: the leftmost one
  malformed,       // a walked entry does not parse: the peer
  unknown,         // "unknown" or an obfuscated node: the peer
  too_long,        // over max_bytes or max_hops: the peer
};
const char* forwarded_outcome_name(ForwardedOutcome o) noexcept;

struct ClientAddress {
  boost::asio::ip::address address;
  ForwardedOutcome outcome = ForwardedOutcome::peer_untrusted;
};

// `peer`: the connection's peer (or the source a PROXY header named). `values`: every value of
// the configured header in the order received (several fields are one comma list, RFC 9110
// 5.3).
ClientAddress client_from_forwarded(const boost::asio::ip::address& peer,
                                    const std::vector<std::string_view>& values,
                                    ForwardedHeader header, const TrustedProxies& trusted,
                                    const ForwardedLimits& limits = {});

}  // namespace mana::gateway
