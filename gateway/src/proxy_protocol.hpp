// SPDX-License-Identifier: Apache-2.0
// PROXY protocol header parser (HAProxy's proxy-protocol.txt, versions 1 and 2), sans-I/O.
//
// A balancer that speaks the PROXY protocol sends one header before the client's first byte,
// naming the client's address and port. The listener ([server] proxy_protocol) feeds the bytes
// it reads into a ProxyHeaderReader until it reports done (the header's length is `consumed`,
// the bytes after it are the client's TLS or HTTP stream) or an error (close the connection).
//
// Bounds: a v1 header is at most 107 bytes including CRLF (the spec's maximum); a v2 header is at
// most max_v2_bytes (16-byte fixed part + address block + TLVs). The reader never buffers more
// than that plus the last chunk fed. TLVs are checked to lie within the header and skipped.
//
// Spec points followed (section numbers of proxy-protocol.txt):
//   2.1  v1: "PROXY" SP ("TCP4" | "TCP6" | "UNKNOWN") ...; single spaces, strict addresses,
//        ports 0..65535 without leading zeros, CRLF; UNKNOWN: the rest of the line is ignored and
//        the connection's own endpoints are used.
//   2.2  v2: 12-byte signature, version 2, command LOCAL (use the connection's endpoints, skip
//        the block) or PROXY; families UNSPEC (own endpoints), TCP over IPv4 / IPv6, and
//        UNIX stream (own endpoints); any other version, command or family byte is an error
//        ("receivers must drop connections presenting unexpected values").
//   A receiver must not guess: in mode v1 a v2 header is an error and vice versa; in mode any
//   one of the two signatures is required.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

namespace mana::gateway {

// [server] proxy_protocol.
enum class ProxyMode : std::uint8_t { off, v1, v2, any };

// Parses "off" | "v1" | "v2" | "any"; false on anything else.
bool parse_proxy_mode(std::string_view text, ProxyMode& out) noexcept;
const char* proxy_mode_name(ProxyMode mode) noexcept;

enum class ProxyError : std::uint8_t {
  none,
  not_proxy,         // the bytes start with neither allowed signature
  v1_too_long,       // no CRLF within 107 bytes
  v1_malformed,      // bad protocol, address, port or spacing
  v2_version,        // version nibble is not 2
  v2_command,        // command is neither LOCAL nor PROXY
  v2_family,         // an address family / transport byte we do not accept (UDP, unassigned)
  v2_too_long,       // header length beyond max_v2_bytes
  v2_short_address,  // the block is shorter than its address family requires
  v2_bad_tlv,        // a TLV runs past the end of the header
};

// A short stable name for logs and metrics ("v1_malformed", ...).
const char* proxy_error_name(ProxyError e) noexcept;

struct ProxyHeader {
  int version = 0;  // 1 or 2
  // The client's and the balancer's side as the header names them; empty for v1 UNKNOWN, v2
  // LOCAL, v2 UNSPEC and v2 UNIX (the caller uses the connection's own endpoints).
  std::optional<boost::asio::ip::tcp::endpoint> source;
  std::optional<boost::asio::ip::tcp::endpoint> destination;
  bool local = false;        // v2 LOCAL (a health check by the balancer itself)
  std::size_t consumed = 0;  // header length: the stream continues after this many bytes
};

class ProxyHeaderReader {
 public:
  static constexpr std::size_t v1_max_bytes = 107;
  static constexpr std::size_t v2_fixed_bytes = 16;
  static constexpr std::size_t default_v2_max_bytes = 4096;

  enum class Status : std::uint8_t { need_more, done, error };

  explicit ProxyHeaderReader(ProxyMode mode,
                             std::size_t max_v2_bytes = default_v2_max_bytes) noexcept;

  // Appends `bytes` and parses what is buffered. After done or error further calls return the
  // same status and buffer nothing.
  Status feed(std::string_view bytes);

  [[nodiscard]] Status status() const noexcept { return status_; }
  [[nodiscard]] ProxyError error() const noexcept { return error_; }
  // Valid after done.
  [[nodiscard]] const ProxyHeader& header() const noexcept { return header_; }
  // After done: the bytes fed beyond the header (the start of the client's stream).
  [[nodiscard]] std::string_view leftover() const noexcept;
  // Bytes buffered so far (bounded by the header limit plus the last chunk fed).
  [[nodiscard]] std::size_t buffered() const noexcept { return buf_.size(); }

 private:
  Status parse();
  Status fail(ProxyError e);
  Status parse_v1();
  Status parse_v2();

  ProxyMode mode_;
  std::size_t max_v2_bytes_;
  std::string buf_;
  Status status_ = Status::need_more;
  ProxyError error_ = ProxyError::none;
  ProxyHeader header_;
};

// One-shot helper for tests and the fuzzer: feeds all of `bytes` at once.
ProxyHeaderReader::Status parse_proxy_header(std::string_view bytes, ProxyMode mode,
                                             ProxyHeader& out, ProxyError& error);

}  // namespace mana::gateway
