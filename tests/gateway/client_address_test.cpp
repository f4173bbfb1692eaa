// The real client address behind reverse proxies (client_address.hpp): CIDRs, the per-IP limit
// key with IPv6 prefix grouping, and X-Forwarded-For / Forwarded only from trusted proxies.
#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "client_address.hpp"

using mana::gateway::Cidr;
using mana::gateway::client_from_forwarded;
using mana::gateway::ClientAddress;
using mana::gateway::ForwardedHeader;
using mana::gateway::ForwardedLimits;
using mana::gateway::ForwardedOutcome;
using mana::gateway::limit_key;
using mana::gateway::normalise_address;
using mana::gateway::parse_cidr_block;
using mana::gateway::TrustedProxies;
namespace ip = boost::asio::ip;

namespace {

TrustedProxies trusted(std::initializer_list<const char*> blocks) {
  std::vector<Cidr> v;
  for (const char* b : blocks) {
    Cidr c;
    REQUIRE(parse_cidr_block(b, c));
    v.push_back(c);
  }
  return TrustedProxies(std::move(v));
}

ip::address addr(const char* s) {
  return ip::make_address(s);
}

ClientAddress xff(const char* peer, const std::vector<std::string_view>& values,
                  const TrustedProxies& t) {
  return client_from_forwarded(addr(peer), values, ForwardedHeader::x_forwarded_for, t);
}

ClientAddress fwd(const char* peer, const std::vector<std::string_view>& values,
                  const TrustedProxies& t) {
  return client_from_forwarded(addr(peer), values, ForwardedHeader::forwarded, t);
}

}  // namespace

TEST_CASE("client address: CIDR blocks parse strictly and match by prefix",
          "[gateway][client_address]") {
  Cidr c;
  REQUIRE(parse_cidr_block("10.1.2.3/8", c));
  CHECK(c.network == addr("10.0.0.0"));  // host bits cleared
  CHECK(c.prefix == 8);
  CHECK(c.contains(addr("10.255.0.1")));
  CHECK_FALSE(c.contains(addr("11.0.0.1")));
  CHECK(c.contains(addr("::ffff:10.9.9.9")));  // IPv4-mapped IPv6 is IPv4
  CHECK_FALSE(c.contains(addr("::a09:909")));  // IPv4-compatible is not
  REQUIRE(parse_cidr_block("2001:db8::/32", c));
  CHECK(c.contains(addr("2001:db8:ffff::1")));
  CHECK_FALSE(c.contains(addr("2001:db9::1")));
  CHECK_FALSE(c.contains(addr("10.0.0.1")));
  REQUIRE(parse_cidr_block("::ffff:192.0.2.0/120", c) == false);  // mapped /120 > 32 bits
  REQUIRE(parse_cidr_block("::ffff:192.0.2.0", c));
  CHECK(c.network.is_v4());
  CHECK(c.prefix == 32);
  REQUIRE(parse_cidr_block("127.0.0.1", c));
  CHECK(c.contains(addr("127.0.0.1")));
  CHECK_FALSE(c.contains(addr("127.0.0.2")));
  REQUIRE(parse_cidr_block("0.0.0.0/0", c));
  CHECK(c.contains(addr("198.51.100.1")));
  CHECK_FALSE(c.contains(addr("::1")));
  REQUIRE(parse_cidr_block("2001:db8::1/127", c));
  CHECK(c.contains(addr("2001:db8::")));
  CHECK_FALSE(c.contains(addr("2001:db8::2")));
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0/8", "10.0.0.0/8/8", "::/129",
        "fe80::1%lo/64", "localhost", " 10.0.0.0/8", "10.0.0.0 /8", "10.0.0.0/-1", "010.0.0.0/8"}) {
    INFO(bad);
    CHECK_FALSE(parse_cidr_block(bad, c));
  }
}

TEST_CASE("client address: the limit key groups IPv6 by prefix, IPv4 by address",
          "[gateway][client_address]") {
  CHECK(limit_key(addr("192.0.2.7"), 64) == "192.0.2.7");
  CHECK(limit_key(addr("::ffff:192.0.2.7"), 64) == "192.0.2.7");
  CHECK(limit_key(addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), 64) == "2001:db8:1:2::/64");
  // Two privacy addresses of one host (same /64) share a key; the next /64 does not.
  CHECK(limit_key(addr("2001:db8:1:2::1"), 64) == limit_key(addr("2001:db8:1:2:ffff::9"), 64));
  CHECK(limit_key(addr("2001:db8:1:2::1"), 64) != limit_key(addr("2001:db8:1:3::1"), 64));
  CHECK(limit_key(addr("2001:db8:1:2::1"), 48) == "2001:db8:1::/48");
  CHECK(limit_key(addr("2001:db8:1:2::1"), 48) == limit_key(addr("2001:db8:1:3::1"), 48));
  CHECK(limit_key(addr("2001:db8:1:2::1"), 56) == "2001:db8:1::/56");
  CHECK(limit_key(addr("2001:db8:1:2ff::1"), 56) == "2001:db8:1:200::/56");
  CHECK(limit_key(addr("2001:db8::1"), 128) == "2001:db8::1");
  CHECK(limit_key(addr("::1"), 64) == "::/64");
  ip::address_v6 scoped = ip::make_address_v6("fe80::1");
  scoped.scope_id(3);
  CHECK(normalise_address(scoped) == addr("fe80::1"));
}

TEST_CASE("client address: forwarding headers from an untrusted peer are ignored",
          "[gateway][client_address]") {
  const TrustedProxies none;
  const TrustedProxies lb = trusted({"10.0.0.0/8"});
  // A client connecting directly claims to be someone else: it stays itself.
  for (const TrustedProxies* t : {&none, &lb}) {
    ClientAddress r = xff("198.51.100.9", {"1.2.3.4"}, *t);
    CHECK(r.address == addr("198.51.100.9"));
    CHECK(r.outcome == ForwardedOutcome::peer_untrusted);
    r = fwd("198.51.100.9", {"for=1.2.3.4"}, *t);
    CHECK(r.address == addr("198.51.100.9"));
    CHECK(r.outcome == ForwardedOutcome::peer_untrusted);
    r = xff("198.51.100.9", {"10.0.0.5"}, *t);  // naming a trusted proxy does not help
    CHECK(r.address == addr("198.51.100.9"));
  }
}

TEST_CASE("client address: X-Forwarded-For is walked from the right past trusted hops",
          "[gateway][client_address]") {
  const TrustedProxies t = trusted({"10.0.0.0/8", "2001:db8:ffff::/48"});
  ClientAddress r = xff("10.0.0.1", {"203.0.113.7"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  CHECK(r.outcome == ForwardedOutcome::client);
  // The client sent its own "X-Forwarded-For: 1.2.3.4"; our proxy appended the real address.
  r = xff("10.0.0.1", {"1.2.3.4, 203.0.113.7"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  // Two proxies of ours: the edge one (10.9.9.9) wrote the client, the inner one the edge.
  r = xff("10.0.0.1", {"1.2.3.4, 203.0.113.7, 10.9.9.9"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  // As separate fields (one list), with ports, brackets and bare IPv6, mixed case, tabs.
  r = xff("10.0.0.1", {"1.2.3.4", "203.0.113.7:4711", "10.9.9.9"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  r = xff("10.0.0.1", {"[2001:DB8:1::7]:4711,\t2001:db8:ffff::1"}, t);
  CHECK(r.address == addr("2001:db8:1::7"));
  r = xff("2001:db8:ffff::2", {"2001:db8:1::7"}, t);
  CHECK(r.address == addr("2001:db8:1::7"));
  r = xff("::ffff:10.0.0.1", {"::ffff:203.0.113.7"}, t);  // mapped on both sides
  CHECK(r.address == addr("203.0.113.7"));
  CHECK(r.address.is_v4());
  // Empty list elements are ignored.
  r = xff("10.0.0.1", {" , 203.0.113.7 ,"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  // No header, or only trusted hops.
  r = xff("10.0.0.1", {}, t);
  CHECK(r.address == addr("10.0.0.1"));
  CHECK(r.outcome == ForwardedOutcome::no_header);
  r = xff("10.0.0.1", {"10.1.1.1, 10.2.2.2"}, t);
  CHECK(r.address == addr("10.1.1.1"));
  CHECK(r.outcome == ForwardedOutcome::all_trusted);
}

TEST_CASE(
    "client address: a malformed walked entry gives the peer, garbage left of the client "
    "is never read",
    "[gateway][client_address]") {
  const TrustedProxies t = trusted({"10.0.0.0/8"});
  for (const char* bad :
       {"203.0.113.7.1", "not-an-ip", "203.0.113.7:99999", "[2001:db8::1", "[203.0.113.7]",
        "fe80::1%eth0", "203.0.113.07", "\"203.0.113.7\"", "2001:db8::1:80]"}) {
    INFO(bad);
    const ClientAddress r = xff("10.0.0.1", {bad}, t);
    CHECK(r.address == addr("10.0.0.1"));
    CHECK(r.outcome == ForwardedOutcome::malformed);
  }
  const ClientAddress u = xff("10.0.0.1", {"unknown"}, t);
  CHECK(u.address == addr("10.0.0.1"));
  CHECK(u.outcome == ForwardedOutcome::unknown);
  // Whatever a client writes left of the address our proxy appended does not matter.
  const ClientAddress r = xff("10.0.0.1", {"\"garbage, [::1, unknown, 203.0.113.7"}, t);
  CHECK(r.address == addr("203.0.113.7"));
  CHECK(r.outcome == ForwardedOutcome::client);
}

TEST_CASE("client address: header size and hop count are bounded", "[gateway][client_address]") {
  const TrustedProxies t = trusted({"10.0.0.0/8"});
  ForwardedLimits lim;
  lim.max_bytes = 64;
  lim.max_hops = 3;
  const std::string big(70, ' ');
  ClientAddress r = client_from_forwarded(addr("10.0.0.1"), {big, "203.0.113.7"},
                                          ForwardedHeader::x_forwarded_for, t, lim);
  CHECK(r.address == addr("10.0.0.1"));
  CHECK(r.outcome == ForwardedOutcome::too_long);
  r = client_from_forwarded(addr("10.0.0.1"), {"203.0.113.7, 10.0.0.2, 10.0.0.3"},
                            ForwardedHeader::x_forwarded_for, t, lim);
  CHECK(r.address == addr("203.0.113.7"));  // 3 hops: within the bound
  r = client_from_forwarded(addr("10.0.0.1"), {"203.0.113.7, 10.0.0.2, 10.0.0.3, 10.0.0.4"},
                            ForwardedHeader::x_forwarded_for, t, lim);
  CHECK(r.address == addr("10.0.0.1"));
  CHECK(r.outcome == ForwardedOutcome::too_long);
}

TEST_CASE("client address: RFC 7239 Forwarded", "[gateway][client_address]") {
  const TrustedProxies t = trusted({"10.0.0.0/8"});
  // RFC 7239 7.1 examples, written by our proxy at the right.
  ClientAddress r = fwd("10.0.0.1", {"for=\"_gazonk\", for=192.0.2.60;proto=http;by=10.0.0.1"}, t);
  CHECK(r.address == addr("192.0.2.60"));
  CHECK(r.outcome == ForwardedOutcome::client);
  r = fwd("10.0.0.1", {"For=\"[2001:db8:cafe::17]:4711\""}, t);
  CHECK(r.address == addr("2001:db8:cafe::17"));
  r = fwd("10.0.0.1", {"for=192.0.2.43, for=198.51.100.17;by=10.0.0.1;proto=https"}, t);
  CHECK(r.address == addr("198.51.100.17"));
  r = fwd("10.0.0.1", {"for=192.0.2.43", "for=\"198.51.100.17:80\";host=gw.example"}, t);
  CHECK(r.address == addr("198.51.100.17"));
  r = fwd("10.0.0.1", {"for=192.0.2.43, for=10.9.9.9"}, t);  // through two of ours
  CHECK(r.address == addr("192.0.2.43"));
  // unknown, obfuscated, or no for= at all: the proxy did not say, so the peer.
  for (const char* v : {"for=unknown", "for=\"_hidden\"", "for=_hidden", "proto=https;by=x"}) {
    INFO(v);
    r = fwd("10.0.0.1", {v}, t);
    CHECK(r.address == addr("10.0.0.1"));
    CHECK(r.outcome == ForwardedOutcome::unknown);
  }
  for (const char* v :
       {"for=[2001:db8::1]", "for=192.0.2.60:80", "for=\"192.0.2.60",
        "for=192.0.2.60;for=192.0.2.61", "for", "=192.0.2.60", "for=\"[2001:db8::1]:99999\"",
        "for=\"2001:db8::1\"", "for=\"192.0.2.60\\\"\""}) {
    INFO(v);
    r = fwd("10.0.0.1", {v}, t);
    CHECK(r.address == addr("10.0.0.1"));
    CHECK(r.outcome == ForwardedOutcome::malformed);
  }
}

TEST_CASE("client address: only the configured header is read", "[gateway][client_address]") {
  // A Forwarded-style value in X-Forwarded-For (a client guessing the wrong header) is malformed
  // there and gives the peer, never the claimed address.
  const TrustedProxies t = trusted({"10.0.0.0/8"});
  const ClientAddress r = xff("10.0.0.1", {"for=1.2.3.4"}, t);
  CHECK(r.address == addr("10.0.0.1"));
  CHECK(r.outcome == ForwardedOutcome::malformed);
}
