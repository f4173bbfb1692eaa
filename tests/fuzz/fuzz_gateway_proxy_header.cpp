// libFuzzer target: the gateway's PROXY protocol header reader (proxy_protocol.hpp) and the
// forwarding-header walk (client_address.hpp), both sans-I/O.
//
// Input: byte 0 = flags (bits 0-1 mode v1/v2/any/off, bit 7 forwarding-header mode), byte 1 =
// chunk size for incremental feeding (1..256), then the bytes.
//
// Invariants (__builtin_trap on violation):
//   P1 feeding in chunks gives the same status, error and header as one feed of all bytes;
//   P2 done: consumed <= the version's bound (107 for v1, the v2 limit), consumed <= input size,
//      the leftover is exactly the input after the header, the signature matches the version
//      and is allowed by the mode; source and destination are both set or both empty;
//   P3 a v1 TCP4 header is the canonical text of what was parsed (strict syntax: no alternative
//      spelling of an address or port is accepted);
//   P4 the reader never buffers more than the bound plus one chunk; an error buffers nothing;
//   F1 forwarding headers: from an untrusted peer the result is the peer; otherwise the result
//      is the peer, or an address that is untrusted (outcome client) or trusted (all_trusted).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "client_address.hpp"
#include "proxy_protocol.hpp"

#define MANA_FUZZ_CHECK(cond)      \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

namespace {

namespace gw = mana::gateway;
namespace ip = boost::asio::ip;
using Status = gw::ProxyHeaderReader::Status;

constexpr std::size_t v2_limit = 512;

bool same(const gw::ProxyHeader& a, const gw::ProxyHeader& b) {
  return a.version == b.version && a.source == b.source && a.destination == b.destination &&
         a.local == b.local && a.consumed == b.consumed;
}

void proxy_header(gw::ProxyMode mode, std::size_t chunk, std::string_view in) {
  gw::ProxyHeaderReader whole(mode, v2_limit);
  const Status s1 = whole.feed(in);
  gw::ProxyHeaderReader pieces(mode, v2_limit);
  Status s2 = Status::need_more;
  for (std::size_t at = 0; at < in.size() && s2 == Status::need_more; at += chunk) {
    s2 = pieces.feed(in.substr(at, chunk));
    if (s2 == Status::need_more)
      MANA_FUZZ_CHECK(pieces.buffered() <= std::max(v2_limit, std::size_t{107}) + chunk);  // P4
  }
  if (in.empty()) s2 = pieces.feed({});
  MANA_FUZZ_CHECK(s1 == s2);  // P1
  MANA_FUZZ_CHECK(whole.error() == pieces.error());
  if (s1 == Status::error) {
    MANA_FUZZ_CHECK(whole.buffered() == 0 && pieces.buffered() == 0);  // P4
    MANA_FUZZ_CHECK(whole.error() != gw::ProxyError::none);
    return;
  }
  if (s1 != Status::done) return;
  const gw::ProxyHeader& h = whole.header();
  MANA_FUZZ_CHECK(same(h, pieces.header()));
  MANA_FUZZ_CHECK(h.consumed <= in.size());  // P2
  MANA_FUZZ_CHECK(whole.leftover() == in.substr(h.consumed));
  MANA_FUZZ_CHECK(h.source.has_value() == h.destination.has_value());
  MANA_FUZZ_CHECK(mode != gw::ProxyMode::off);
  if (h.version == 1) {
    MANA_FUZZ_CHECK(mode != gw::ProxyMode::v2);
    MANA_FUZZ_CHECK(h.consumed <= 107 && in.substr(0, 6) == "PROXY ");
    MANA_FUZZ_CHECK(in.substr(h.consumed - 2, 2) == "\r\n");
    if (h.source && h.source->address().is_v4()) {  // P3
      const std::string canon = "PROXY TCP4 " + h.source->address().to_string() + " " +
                                h.destination->address().to_string() + " " +
                                std::to_string(h.source->port()) + " " +
                                std::to_string(h.destination->port()) + "\r\n";
      MANA_FUZZ_CHECK(in.substr(0, h.consumed) == canon);
    }
  } else {
    MANA_FUZZ_CHECK(h.version == 2 && mode != gw::ProxyMode::v1);
    MANA_FUZZ_CHECK(h.consumed >= 16 && h.consumed <= v2_limit);
    MANA_FUZZ_CHECK(in.substr(0, 12) == std::string_view("\r\n\r\n\0\r\nQUIT\n", 12));
    MANA_FUZZ_CHECK(!(h.local && h.source));
  }
}

void forwarded(std::uint8_t flags, std::string_view in) {
  std::vector<gw::Cidr> blocks;
  for (const char* b : {"10.0.0.0/8", "2001:db8:ffff::/48", "127.0.0.1"}) {
    gw::Cidr c;
    MANA_FUZZ_CHECK(gw::parse_cidr_block(b, c));
    blocks.push_back(c);
  }
  const gw::TrustedProxies trusted(std::move(blocks));
  // Fields split at NUL bytes.
  std::vector<std::string_view> values;
  std::size_t start = 0;
  while (start <= in.size()) {
    const std::size_t nul = std::min(in.find('\0', start), in.size());
    values.push_back(in.substr(start, nul - start));
    start = nul + 1;
  }
  const auto header =
      (flags & 1) != 0 ? gw::ForwardedHeader::forwarded : gw::ForwardedHeader::x_forwarded_for;
  gw::ForwardedLimits lim;
  lim.max_bytes = 1024;
  lim.max_hops = 8;
  for (const char* peer_text : {"10.1.2.3", "198.51.100.1", "::ffff:127.0.0.1"}) {
    const ip::address peer = ip::make_address(peer_text);
    const gw::ClientAddress r = gw::client_from_forwarded(peer, values, header, trusted, lim);
    const ip::address self = gw::normalise_address(peer);
    if (!trusted.contains(self)) {
      MANA_FUZZ_CHECK(r.address == self && r.outcome == gw::ForwardedOutcome::peer_untrusted);
      continue;
    }
    switch (r.outcome) {
      case gw::ForwardedOutcome::client:
        MANA_FUZZ_CHECK(!trusted.contains(r.address));
        MANA_FUZZ_CHECK(r.address == gw::normalise_address(r.address));
        break;
      case gw::ForwardedOutcome::all_trusted:
        MANA_FUZZ_CHECK(trusted.contains(r.address));
        break;
      default:
        MANA_FUZZ_CHECK(r.address == self);
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t chunk = std::size_t{data[1]} + 1;
  const std::string_view in(reinterpret_cast<const char*>(data + 2), size - 2);
  if ((flags & 0x80) != 0) {
    forwarded(flags, in);
    return 0;
  }
  static constexpr gw::ProxyMode modes[] = {gw::ProxyMode::v1, gw::ProxyMode::v2,
                                            gw::ProxyMode::any, gw::ProxyMode::off};
  proxy_header(modes[flags & 3], chunk, in);
  return 0;
}
