// PROXY protocol v1/v2 header parser (proxy_protocol.hpp): the spec's forms, incremental feeding,
// bounds, typed errors, TLVs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "proxy_protocol.hpp"

using mana::gateway::parse_proxy_header;
using mana::gateway::parse_proxy_mode;
using mana::gateway::ProxyError;
using mana::gateway::ProxyHeader;
using mana::gateway::ProxyHeaderReader;
using mana::gateway::ProxyMode;
using Status = ProxyHeaderReader::Status;
namespace ip = boost::asio::ip;

namespace {

const std::string v2_sig("\r\n\r\n\0\r\nQUIT\n", 12);

// A v2 header: signature, version/command byte, family byte, then `block` (length from it).
std::string v2(std::uint8_t ver_cmd, std::uint8_t fam, const std::string& block) {
  std::string h = v2_sig;
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(fam);
  h += static_cast<char>((block.size() >> 8) & 0xFF);
  h += static_cast<char>(block.size() & 0xFF);
  return h + block;
}

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b)
    s += static_cast<char>(x);
  return s;
}

std::string tlv(int type, const std::string& value) {
  return bytes({type, static_cast<int>(value.size() >> 8), static_cast<int>(value.size() & 0xFF)}) +
         value;
}

// 203.0.113.7:51234 -> 192.0.2.1:443
const std::string inet_block = bytes({203, 0, 113, 7, 192, 0, 2, 1, 0xC8, 0x22, 0x01, 0xBB});

Status parse(const std::string& in, ProxyMode mode, ProxyHeader& h, ProxyError& e) {
  return parse_proxy_header(in, mode, h, e);
}

ProxyError error_of(const std::string& in, ProxyMode mode = ProxyMode::any) {
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  const Status st = parse(in, mode, h, e);
  CHECK(st == Status::error);
  return e;
}

}  // namespace

TEST_CASE("proxy protocol: modes parse strictly", "[gateway][proxy_protocol]") {
  ProxyMode m = ProxyMode::any;
  CHECK(parse_proxy_mode("off", m));
  CHECK(m == ProxyMode::off);
  CHECK(parse_proxy_mode("v1", m));
  CHECK(m == ProxyMode::v1);
  CHECK(parse_proxy_mode("v2", m));
  CHECK(parse_proxy_mode("any", m));
  CHECK(m == ProxyMode::any);
  CHECK_FALSE(parse_proxy_mode("V1", m));
  CHECK_FALSE(parse_proxy_mode("on", m));
  CHECK_FALSE(parse_proxy_mode("", m));
}

TEST_CASE("proxy protocol v1: TCP4 and TCP6 name the client", "[gateway][proxy_protocol]") {
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  const std::string line = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
  REQUIRE(parse(line + "GET / HTTP/1.1\r\n", ProxyMode::v1, h, e) == Status::done);
  CHECK(h.version == 1);
  REQUIRE(h.source);
  CHECK(h.source->address() == ip::make_address("203.0.113.7"));
  CHECK(h.source->port() == 51234);
  CHECK(h.destination->address() == ip::make_address("192.0.2.1"));
  CHECK(h.destination->port() == 443);
  CHECK(h.consumed == line.size());

  ProxyHeaderReader r(ProxyMode::any);
  REQUIRE(r.feed("PROXY TCP6 2001:db8::7 2001:db8::1 0 65535\r\n\x16\x03\x01") == Status::done);
  CHECK(r.header().source->address() == ip::make_address("2001:db8::7"));
  CHECK(r.header().source->port() == 0);
  CHECK(r.header().destination->port() == 65535);
  CHECK(r.leftover() == "\x16\x03\x01");  // the TLS ClientHello starts right after the header
}

TEST_CASE("proxy protocol v1: UNKNOWN uses the connection's endpoints",
          "[gateway][proxy_protocol]") {
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  REQUIRE(parse("PROXY UNKNOWN\r\n", ProxyMode::v1, h, e) == Status::done);
  CHECK_FALSE(h.source);
  CHECK(h.consumed == 15);
  // Anything up to CRLF is ignored after UNKNOWN (2.1).
  REQUIRE(parse("PROXY UNKNOWN ffff::1 whatever 1 2\r\n", ProxyMode::v1, h, e) == Status::done);
  CHECK_FALSE(h.source);
  CHECK(error_of("PROXY UNKNOWNX\r\n") == ProxyError::v1_malformed);
}

TEST_CASE("proxy protocol v1: every byte at a time, then done at the LF",
          "[gateway][proxy_protocol]") {
  const std::string line = "PROXY TCP4 198.51.100.22 10.0.0.1 35646 80\r\n";
  ProxyHeaderReader r(ProxyMode::any);
  for (std::size_t i = 0; i + 1 < line.size(); ++i)
    REQUIRE(r.feed(line.substr(i, 1)) == Status::need_more);
  REQUIRE(r.feed(line.substr(line.size() - 1)) == Status::done);
  CHECK(r.header().source->address() == ip::make_address("198.51.100.22"));
  CHECK(r.leftover().empty());
  CHECK(r.feed("more") == Status::done);  // further bytes are not buffered
  CHECK(r.buffered() == line.size());
}

TEST_CASE("proxy protocol v1: malformed lines are typed errors", "[gateway][proxy_protocol]") {
  for (const char* bad : {
           "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\n",      // LF without CR
           "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\rX",     // CR without LF
           "PROXY TCP4  203.0.113.7 192.0.2.1 51234 443\r\n",   // double space
           "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443 \r\n",   // trailing space
           "PROXY TCP4 203.0.113.7 192.0.2.1 51234\r\n",        // missing port
           "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443 9\r\n",  // extra field
           "PROXY TCP4 2001:db8::7 192.0.2.1 51234 443\r\n",    // v6 under TCP4
           "PROXY TCP6 203.0.113.7 2001:db8::1 51234 443\r\n",  // v4 under TCP6
           "PROXY TCP4 203.0.113.256 192.0.2.1 1 2\r\n",        // octet out of range
           "PROXY TCP4 203.0.113.07 192.0.2.1 1 2\r\n",         // leading zero octet
           "PROXY TCP6 fe80::1%eth0 fe80::2 1 2\r\n",           // scope id
           "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",    // port out of range
           "PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",     // leading zero port
           "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",       // sign
           "PROXY UDP4 203.0.113.7 192.0.2.1 1 2\r\n",          // protocol
           "PROXY tcp4 203.0.113.7 192.0.2.1 1 2\r\n",          // case
           "PROXY \r\n",                                        // nothing
       }) {
    INFO(bad);
    CHECK(error_of(bad) == ProxyError::v1_malformed);
  }
}

TEST_CASE("proxy protocol v1: no CRLF within 107 bytes is too long", "[gateway][proxy_protocol]") {
  // The longest legal line is 107 bytes with CRLF ("PROXY UNKNOWN" plus padding here).
  std::string max_line = "PROXY UNKNOWN " + std::string(107 - 16, 'x') + "\r\n";
  REQUIRE(max_line.size() == 107);
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  CHECK(parse(max_line, ProxyMode::v1, h, e) == Status::done);
  const std::string over = "PROXY UNKNOWN " + std::string(107 - 15, 'x') + "\r\n";
  CHECK(error_of(over) == ProxyError::v1_too_long);
  // Fed in pieces: need_more up to 106 bytes, the error at the 107th.
  ProxyHeaderReader r(ProxyMode::v1);
  CHECK(r.feed(std::string("PROXY TCP4 ") + std::string(95, '1')) == Status::need_more);
  CHECK(r.buffered() == 106);
  CHECK(r.feed("1") == Status::error);
  CHECK(r.error() == ProxyError::v1_too_long);
  CHECK(r.buffered() == 0);  // an error frees the buffer
}

TEST_CASE("proxy protocol: a truncated header asks for more, never succeeds",
          "[gateway][proxy_protocol]") {
  const std::string v1 = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
  const std::string v2h = v2(0x21, 0x11, inet_block + tlv(0x04, "noop"));
  for (const std::string& full : {v1, v2h}) {
    for (std::size_t n = 0; n < full.size(); ++n) {
      ProxyHeader h;
      ProxyError e = ProxyError::none;
      INFO("prefix of " << n << " bytes");
      CHECK(parse(full.substr(0, n), ProxyMode::any, h, e) == Status::need_more);
    }
  }
}

TEST_CASE("proxy protocol: the mode decides which signature is accepted",
          "[gateway][proxy_protocol]") {
  const std::string v1 = "PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n";
  const std::string v2h = v2(0x21, 0x11, inet_block);
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  CHECK(parse(v1, ProxyMode::v1, h, e) == Status::done);
  CHECK(parse(v2h, ProxyMode::v2, h, e) == Status::done);
  CHECK(parse(v1, ProxyMode::any, h, e) == Status::done);
  CHECK(parse(v2h, ProxyMode::any, h, e) == Status::done);
  CHECK(error_of(v2h, ProxyMode::v1) == ProxyError::not_proxy);
  CHECK(error_of(v1, ProxyMode::v2) == ProxyError::not_proxy);
  // A client that speaks HTTP or TLS straight to a PROXY listener is refused at its first byte.
  CHECK(error_of("GET / HTTP/1.1\r\n") == ProxyError::not_proxy);
  CHECK(error_of("\x16\x03\x01") == ProxyError::not_proxy);
  CHECK(error_of("PROXX") == ProxyError::not_proxy);
  CHECK(error_of(std::string("\r\n\r\n\0\r\nQUIT\r", 12)) == ProxyError::not_proxy);
}

TEST_CASE("proxy protocol v2: TCP over IPv4 and IPv6", "[gateway][proxy_protocol]") {
  ProxyHeaderReader r(ProxyMode::v2);
  const std::string h4 = v2(0x21, 0x11, inet_block);
  REQUIRE(r.feed(h4 + "GET") == Status::done);
  CHECK(r.header().version == 2);
  CHECK(r.header().source->address() == ip::make_address("203.0.113.7"));
  CHECK(r.header().source->port() == 51234);
  CHECK(r.header().destination->address() == ip::make_address("192.0.2.1"));
  CHECK(r.header().destination->port() == 443);
  CHECK(r.header().consumed == 28);
  CHECK(r.leftover() == "GET");

  std::string block6(36, '\0');
  const auto src = ip::make_address_v6("2001:db8:1:2::7").to_bytes();
  const auto dst = ip::make_address_v6("2001:db8::1").to_bytes();
  std::copy(src.begin(), src.end(), block6.begin());
  std::copy(dst.begin(), dst.end(), block6.begin() + 16);
  block6[32] = '\x01';  // port 258
  block6[33] = '\x02';
  block6[35] = '\x50';  // port 80
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  REQUIRE(parse(v2(0x21, 0x21, block6), ProxyMode::v2, h, e) == Status::done);
  CHECK(h.source->address() == ip::make_address("2001:db8:1:2::7"));
  CHECK(h.source->port() == 258);
  CHECK(h.destination->port() == 80);
}

TEST_CASE("proxy protocol v2: TLVs are skipped within the header", "[gateway][proxy_protocol]") {
  // ALPN, authority, a CRC32C, an SSL block with a nested version, NOOP padding.
  const std::string tlvs = tlv(0x01, "h2") + tlv(0x02, "gw.example") +
                           tlv(0x03, bytes({1, 2, 3, 4})) +
                           tlv(0x20, bytes({0x07, 0, 0, 0, 0}) + tlv(0x21, "TLSv1.3")) +
                           tlv(0x04, std::string(100, '\0'));
  ProxyHeaderReader r(ProxyMode::v2);
  const std::string h = v2(0x21, 0x11, inet_block + tlvs);
  REQUIRE(r.feed(h + "tail") == Status::done);
  CHECK(r.header().source->address() == ip::make_address("203.0.113.7"));
  CHECK(r.header().consumed == h.size());
  CHECK(r.leftover() == "tail");
  // A zero-length TLV is fine too.
  ProxyHeader out;
  ProxyError e = ProxyError::none;
  CHECK(parse(v2(0x21, 0x11, inet_block + tlv(0x04, "")), ProxyMode::v2, out, e) == Status::done);
  // A TLV running past the header's end, or a partial TLV header, is an error.
  std::string overrun = inet_block + tlv(0x02, "gw.example");
  overrun.pop_back();
  CHECK(error_of(v2(0x21, 0x11, overrun)) == ProxyError::v2_bad_tlv);
  CHECK(error_of(v2(0x21, 0x11, inet_block + bytes({0x04, 0}))) == ProxyError::v2_bad_tlv);
  CHECK(error_of(v2(0x21, 0x11, inet_block + bytes({0x04}))) == ProxyError::v2_bad_tlv);
}

TEST_CASE("proxy protocol v2: LOCAL, UNSPEC and UNIX use the connection's endpoints",
          "[gateway][proxy_protocol]") {
  ProxyHeader h;
  ProxyError e = ProxyError::none;
  // LOCAL (a balancer's health check): family and block are ignored, whatever they hold.
  REQUIRE(parse(v2(0x20, 0x11, inet_block), ProxyMode::v2, h, e) == Status::done);
  CHECK(h.local);
  CHECK_FALSE(h.source);
  REQUIRE(parse(v2(0x20, 0x00, ""), ProxyMode::v2, h, e) == Status::done);
  CHECK(h.local);
  CHECK(h.consumed == 16);
  REQUIRE(parse(v2(0x20, 0x77, "x"), ProxyMode::v2, h, e) == Status::done);
  // PROXY with UNSPEC: addresses ignored; UNIX stream: no IP.
  REQUIRE(parse(v2(0x21, 0x00, "anything"), ProxyMode::v2, h, e) == Status::done);
  CHECK_FALSE(h.local);
  CHECK_FALSE(h.source);
  REQUIRE(parse(v2(0x21, 0x31, std::string(216, '\0')), ProxyMode::v2, h, e) == Status::done);
  CHECK_FALSE(h.source);
}

TEST_CASE("proxy protocol v2: version, command, family and length are checked",
          "[gateway][proxy_protocol]") {
  CHECK(error_of(v2(0x11, 0x11, inet_block)) == ProxyError::v2_version);
  CHECK(error_of(v2(0x31, 0x11, inet_block)) == ProxyError::v2_version);
  CHECK(error_of(v2(0x22, 0x11, inet_block)) == ProxyError::v2_command);
  CHECK(error_of(v2(0x2F, 0x11, inet_block)) == ProxyError::v2_command);
  CHECK(error_of(v2(0x21, 0x12, inet_block)) == ProxyError::v2_family);  // UDP over IPv4
  CHECK(error_of(v2(0x21, 0x22, inet_block)) == ProxyError::v2_family);  // UDP over IPv6
  CHECK(error_of(v2(0x21, 0x10, inet_block)) == ProxyError::v2_family);  // unassigned
  CHECK(error_of(v2(0x21, 0x41, inet_block)) == ProxyError::v2_family);
  CHECK(error_of(v2(0x21, 0x11, inet_block.substr(0, 11))) == ProxyError::v2_short_address);
  CHECK(error_of(v2(0x21, 0x21, inet_block)) == ProxyError::v2_short_address);
  CHECK(error_of(v2(0x21, 0x31, std::string(215, '\0'))) == ProxyError::v2_short_address);
}

TEST_CASE("proxy protocol v2: the length is bounded before the block is read",
          "[gateway][proxy_protocol]") {
  // Length 0xFFFF announced: refused from the 16-byte fixed part alone, nothing buffered.
  ProxyHeaderReader r(ProxyMode::v2);
  CHECK(r.feed(v2_sig + bytes({0x21, 0x11, 0xFF, 0xFF})) == Status::error);
  CHECK(r.error() == ProxyError::v2_too_long);
  // Exactly at the bound is accepted.
  ProxyHeaderReader small(ProxyMode::v2, 100);
  const std::string at =
      v2(0x21, 0x11, inet_block + tlv(0x04, std::string(100 - 16 - 12 - 3, 'p')));
  REQUIRE(at.size() == 100);
  CHECK(small.feed(at) == Status::done);
  ProxyHeaderReader smaller(ProxyMode::v2, 99);
  CHECK(smaller.feed(at) == Status::error);
  CHECK(smaller.error() == ProxyError::v2_too_long);
  // Fed in pieces, the buffer never holds more than the header.
  ProxyHeaderReader pieces(ProxyMode::v2);
  const std::string big = v2(0x21, 0x11, inet_block + tlv(0x04, std::string(3000, 'p')));
  std::size_t done_at = 0;
  for (std::size_t i = 0; i < big.size(); i += 7) {
    if (pieces.feed(big.substr(i, 7)) == Status::done) {
      done_at = i;
      break;
    }
    CHECK(pieces.buffered() <= big.size());
  }
  CHECK(done_at + 7 >= big.size());
  CHECK(pieces.header().consumed == big.size());
}

TEST_CASE("proxy protocol: mode off accepts nothing", "[gateway][proxy_protocol]") {
  CHECK(error_of("PROXY UNKNOWN\r\n", ProxyMode::off) == ProxyError::not_proxy);
  CHECK(error_of(v2(0x21, 0x11, inet_block), ProxyMode::off) == ProxyError::not_proxy);
}
