// SPDX-License-Identifier: Apache-2.0
#include "proxy_protocol.hpp"

#include <algorithm>
#include <array>

namespace mana::gateway {

namespace {

namespace ip = boost::asio::ip;

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

// v2 address block sizes (proxy-protocol.txt 2.2).
constexpr std::size_t v2_inet_bytes = 12;
constexpr std::size_t v2_inet6_bytes = 36;
constexpr std::size_t v2_unix_bytes = 216;

// True when `buf` and `sig` agree on their common length (the signature may still follow).
bool prefix_compatible(std::string_view buf, std::string_view sig) noexcept {
  const std::size_t n = std::min(buf.size(), sig.size());
  return buf.substr(0, n) == sig.substr(0, n);
}

// A decimal port without leading zeros, 0..65535.
bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
  if (s.empty() || s.size() > 5) return false;
  if (s.size() > 1 && s.front() == '0') return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

// Strict textual address of the family `v6`. No scope ids, no surrounding text.
bool parse_address(std::string_view s, bool v6, ip::address& out) {
  if (s.empty() || s.size() > 45) return false;
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') ||
                    (v6 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':')) ||
                    c == '.';
    if (!ok) return false;
  }
  boost::system::error_code ec;
  if (v6) {
    const ip::address_v6 a = ip::make_address_v6(std::string(s), ec);
    if (ec) return false;
    out = a;
  } else {
    const ip::address_v4 a = ip::make_address_v4(std::string(s), ec);
    if (ec) return false;
    out = a;
  }
  return true;
}

// Splits `line` on single spaces into at most `max` fields; false on empty fields (double
// spaces, leading or trailing space) or more fields.
template <std::size_t N>
bool split_fields(std::string_view line, std::array<std::string_view, N>& fields,
                  std::size_t& count) noexcept {
  count = 0;
  std::size_t start = 0;
  while (true) {
    const std::size_t sp = line.find(' ', start);
    const std::string_view f =
        line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
    if (f.empty() || count == N) return false;
    fields[count++] = f;
    if (sp == std::string_view::npos) return true;
    start = sp + 1;
  }
}

std::uint16_t be16(const std::string& b, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(b[at]) << 8) |
                                    static_cast<unsigned char>(b[at + 1]));
}

}  // namespace

bool parse_proxy_mode(std::string_view text, ProxyMode& out) noexcept {
  if (text == "off") {
    out = ProxyMode::off;
  } else if (text == "v1") {
    out = ProxyMode::v1;
  } else if (text == "v2") {
    out = ProxyMode::v2;
  } else if (text == "any") {
    out = ProxyMode::any;
  } else {
    return false;
  }
  return true;
}

const char* proxy_mode_name(ProxyMode mode) noexcept {
  switch (mode) {
    case ProxyMode::off:
      return "off";
    case ProxyMode::v1:
      return "v1";
    case ProxyMode::v2:
      return "v2";
    case ProxyMode::any:
      return "any";
  }
  return "?";
}

const char* proxy_error_name(ProxyError e) noexcept {
  switch (e) {
    case ProxyError::none:
      return "none";
    case ProxyError::not_proxy:
      return "not_proxy";
    case ProxyError::v1_too_long:
      return "v1_too_long";
    case ProxyError::v1_malformed:
      return "v1_malformed";
    case ProxyError::v2_version:
      return "v2_version";
    case ProxyError::v2_command:
      return "v2_command";
    case ProxyError::v2_family:
      return "v2_family";
    case ProxyError::v2_too_long:
      return "v2_too_long";
    case ProxyError::v2_short_address:
      return "v2_short_address";
    case ProxyError::v2_bad_tlv:
      return "v2_bad_tlv";
  }
  return "?";
}

ProxyHeaderReader::ProxyHeaderReader(ProxyMode mode, std::size_t max_v2_bytes) noexcept
    : mode_(mode), max_v2_bytes_(std::max(max_v2_bytes, v2_fixed_bytes + v2_inet6_bytes)) {}

std::string_view ProxyHeaderReader::leftover() const noexcept {
  if (status_ != Status::done) return {};
  return std::string_view(buf_).substr(header_.consumed);
}

ProxyHeaderReader::Status ProxyHeaderReader::feed(std::string_view bytes) {
  if (status_ != Status::need_more) return status_;
  buf_.append(bytes);
  return status_ = parse();
}

ProxyHeaderReader::Status ProxyHeaderReader::fail(ProxyError e) {
  error_ = e;
  buf_.clear();
  buf_.shrink_to_fit();
  return Status::error;
}

ProxyHeaderReader::Status ProxyHeaderReader::parse() {
  if (buf_.empty()) return Status::need_more;
  const bool v1_allowed = mode_ == ProxyMode::v1 || mode_ == ProxyMode::any;
  const bool v2_allowed = mode_ == ProxyMode::v2 || mode_ == ProxyMode::any;
  const bool v1_alive = v1_allowed && prefix_compatible(buf_, v1_signature);
  const bool v2_alive = v2_allowed && prefix_compatible(buf_, v2_signature);
  if (!v1_alive && !v2_alive) return fail(ProxyError::not_proxy);
  if (v1_alive && buf_.size() >= v1_signature.size()) return parse_v1();
  if (v2_alive && buf_.size() >= v2_signature.size()) return parse_v2();
  return Status::need_more;
}

ProxyHeaderReader::Status ProxyHeaderReader::parse_v1() {
  const std::string_view window = std::string_view(buf_).substr(0, v1_max_bytes);
  const std::size_t lf = window.find('\n');
  if (lf == std::string_view::npos) {
    // A CR must be followed by LF: a CR elsewhere can be refused before the limit.
    const std::size_t cr = window.find('\r');
    if (cr != std::string_view::npos && cr + 1 < window.size())
      return fail(ProxyError::v1_malformed);
    return window.size() >= v1_max_bytes ? fail(ProxyError::v1_too_long) : Status::need_more;
  }
  if (lf == 0 || window[lf - 1] != '\r') return fail(ProxyError::v1_malformed);
  const std::string_view line = window.substr(v1_signature.size(), lf - 1 - v1_signature.size());
  if (line.find('\r') != std::string_view::npos) return fail(ProxyError::v1_malformed);
  header_ = ProxyHeader{};
  header_.version = 1;
  header_.consumed = lf + 1;
  // UNKNOWN: whatever follows up to CRLF is ignored (2.1).
  constexpr std::string_view unknown = "UNKNOWN";
  if (line.substr(0, unknown.size()) == unknown &&
      (line.size() == unknown.size() || line[unknown.size()] == ' '))
    return Status::done;
  std::array<std::string_view, 5> f;
  std::size_t count = 0;
  if (!split_fields(line, f, count) || count != 5) return fail(ProxyError::v1_malformed);
  bool v6 = false;
  if (f[0] == "TCP6") {
    v6 = true;
  } else if (f[0] != "TCP4") {
    return fail(ProxyError::v1_malformed);
  }
  ip::address src;
  ip::address dst;
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  if (!parse_address(f[1], v6, src) || !parse_address(f[2], v6, dst) || !parse_port(f[3], sport) ||
      !parse_port(f[4], dport))
    return fail(ProxyError::v1_malformed);
  header_.source = ip::tcp::endpoint(src, sport);
  header_.destination = ip::tcp::endpoint(dst, dport);
  return Status::done;
}

ProxyHeaderReader::Status ProxyHeaderReader::parse_v2() {
  if (buf_.size() < v2_fixed_bytes) return Status::need_more;
  const auto ver_cmd = static_cast<unsigned char>(buf_[12]);
  const auto fam = static_cast<unsigned char>(buf_[13]);
  const std::size_t len = be16(buf_, 14);
  if ((ver_cmd >> 4) != 2) return fail(ProxyError::v2_version);
  const unsigned cmd = ver_cmd & 0x0FU;
  if (cmd > 1) return fail(ProxyError::v2_command);
  if (v2_fixed_bytes + len > max_v2_bytes_) return fail(ProxyError::v2_too_long);
  // The family byte is checked as soon as it is known, before the block arrives.
  std::size_t need = 0;
  bool inet = false;
  bool inet6 = false;
  if (cmd == 1) {
    switch (fam) {
      case 0x00:  // UNSPEC: addresses ignored
        break;
      case 0x11:  // TCP over IPv4
        need = v2_inet_bytes;
        inet = true;
        break;
      case 0x21:  // TCP over IPv6
        need = v2_inet6_bytes;
        inet6 = true;
        break;
      case 0x31:  // UNIX stream: no IP address; the connection's own endpoints are used
        need = v2_unix_bytes;
        break;
      default:
        return fail(ProxyError::v2_family);
    }
    if (len < need) return fail(ProxyError::v2_short_address);
  }
  if (buf_.size() < v2_fixed_bytes + len) return Status::need_more;
  header_ = ProxyHeader{};
  header_.version = 2;
  header_.consumed = v2_fixed_bytes + len;
  if (cmd == 0) {
    header_.local = true;  // LOCAL: the whole block, family included, is ignored
    return Status::done;
  }
  if (fam == 0x00) return Status::done;
  const char* p = buf_.data() + v2_fixed_bytes;
  if (inet) {
    ip::address_v4::bytes_type s{};
    ip::address_v4::bytes_type d{};
    std::copy(p, p + 4, s.begin());
    std::copy(p + 4, p + 8, d.begin());
    header_.source = ip::tcp::endpoint(ip::address_v4(s), be16(buf_, v2_fixed_bytes + 8));
    header_.destination = ip::tcp::endpoint(ip::address_v4(d), be16(buf_, v2_fixed_bytes + 10));
  } else if (inet6) {
    ip::address_v6::bytes_type s{};
    ip::address_v6::bytes_type d{};
    std::copy(p, p + 16, s.begin());
    std::copy(p + 16, p + 32, d.begin());
    header_.source = ip::tcp::endpoint(ip::address_v6(s), be16(buf_, v2_fixed_bytes + 32));
    header_.destination = ip::tcp::endpoint(ip::address_v6(d), be16(buf_, v2_fixed_bytes + 34));
  }
  // TLVs (2.2.7): type u8, length u16 BE, value; each must end within the header. Skipped.
  std::size_t at = v2_fixed_bytes + need;
  const std::size_t end = v2_fixed_bytes + len;
  while (at < end) {
    if (end - at < 3) return fail(ProxyError::v2_bad_tlv);
    const std::size_t tlv_len = be16(buf_, at + 1);
    if (end - at - 3 < tlv_len) return fail(ProxyError::v2_bad_tlv);
    at += 3 + tlv_len;
  }
  return Status::done;
}

ProxyHeaderReader::Status parse_proxy_header(std::string_view bytes, ProxyMode mode,
                                             ProxyHeader& out, ProxyError& error) {
  ProxyHeaderReader r(mode);
  const auto st = r.feed(bytes);
  error = r.error();
  if (st == ProxyHeaderReader::Status::done) out = r.header();
  return st;
}

}  // namespace mana::gateway
