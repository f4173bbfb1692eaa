// libFuzzer target: the gateway's HTTP upgrade and policy path, driven with fuzz-chosen bytes
// through the real Server (HttpHandler, Beast's request parser and WebSocket accept, Connection,
// Session, ServerSession, JWT HS256 check, target policy on open) over an in-memory stream: one
// end of a Unix socket pair is handed to Server::serve() as if accepted, the harness plays the
// client on the other end. No listening socket, no network: the config allows no target, and
// connect()/getaddrinfo() are guards that trap if any code path tries to reach a target.
//
// Each input runs a fresh Server on a fresh io_context; the io_context is only ever polled (no
// blocking run, no timer can fire: every timeout is far longer than an input), with a bounded
// number of rounds, so an input cannot hang.
//
// Input: byte 0 = config and harness flags, then records [op u8][len u16 LE][len bytes]:
//   op % 6 == 0  raw bytes sent before the 101 (the HTTP request, any bytes)
//   op % 6 == 1  an upgrade request built from a template (path/Origin/subprotocol/key choices
//                and extra header text chosen by the fuzzer), sent before the 101
//   op % 6 == 2  raw bytes sent after the 101 (WebSocket frames, any bytes)
//   op % 6 == 3  one client WebSocket frame (opcode, FIN, RSV, mask chosen by the fuzzer)
//   op % 6 == 4  a hello in a masked text frame with an HS256 JWT signed by the harness
//                (claims, key, alg and profile chosen by the fuzzer), sent after the 101
//   op % 6 == 5  a pure target-policy probe (precheck + check_resolved on a rule set)
// The client sends the post-101 bytes only once it has read a 101 (as RFC 6455 requires), unless
// the "pipelined" flag sends everything at once.
//
// Invariants (__builtin_trap on violation), judged against an independent oracle (a second Beast
// parse of the same request bytes, a client-frame decoder, an OpenSSL HMAC check of the token):
//   U1 the gateway's output starts with exactly one HTTP response; after a non-101 response
//      nothing follows (no frame, nothing forwarded before a 101);
//   U2 a 101 only for a complete request within max_header_bytes / max_header_count, on the
//      configured path, with one allowlisted Origin (or none with allow_missing), offering
//      mana.ssh.v1; the 101 selects mana.ssh.v1 and no extension;
//   U3 a complete request whose header is over max_header_bytes or max_header_count gets 431;
//      a complete request that passes the policy is never refused with 403/404/431;
//   U4 server frames are unmasked, RSV 0, known opcodes; no binary message before hello_ok;
//   U5 hello_ok only if the client's first message was a hello whose auth is acceptable (scheme
//      none with allow_none, or an HS256 JWT with a valid signature under the gateway's key, a
//      non-empty sub and an unexpired exp) and which did not ask to resume (a fresh gateway
//      knows no token);
//   U6 policy: an allowed target has a rule for its port, at least one endpoint, and every
//      address is in an address/CIDR rule, or reached through a name rule and not special.
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "log.hpp"
#include "mana/core/messages.hpp"
#include "mana/core/wire_profile.hpp"
#include "policy.hpp"
#include "server.hpp"

#define MANA_FUZZ_CHECK(cond)      \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// ---- guards: the gateway must never reach for a target while fuzzed ----------------------------
// The config allows no target, so every open is denied before DNS and before any SYN. These
// definitions take the place of libc's for the code of this binary (Asio's resolver and connect
// included) and trap, so a regression that lets an open through is a crash, not a packet.
extern "C" int connect(int /*fd*/, const struct sockaddr* /*addr*/, socklen_t /*len*/) {
  __builtin_trap();
}
extern "C" int getaddrinfo(const char* /*node*/, const char* /*service*/,
                           const struct addrinfo* /*hints*/, struct addrinfo** /*res*/) {
  __builtin_trap();
}

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace gw = mana::gateway;
namespace core = mana::core;

// ---- input
// ---------------------------------------------------------------------------------------

class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : p_(data), n_(size) {}
  [[nodiscard]] bool empty() const { return n_ == 0; }
  std::uint8_t u8() {
    if (n_ == 0) return 0;
    --n_;
    return *p_++;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::string bytes(std::size_t len) {
    len = std::min(len, n_);
    std::string s(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    n_ -= len;
    return s;
  }
  std::string rest() { return bytes(n_); }

 private:
  const std::uint8_t* p_;
  std::size_t n_;
};

// ---- fixed test key (the gateway reads it from a file, as in production) ------------------------

constexpr std::string_view test_key = "fuzz-test-key-0123456789abcdef-0123456789";
constexpr std::string_view wrong_key = "some-other-key-0123456789abcdef-012345678";
constexpr std::size_t header_limit = 2048;
constexpr std::size_t header_count_limit = 24;
constexpr std::uint32_t clock_skew_s = 30;
constexpr std::string_view allowed_origins[] = {"https://app.example", "http://127.0.0.1:8080"};
constexpr std::string_view ws_key = "dGhlIHNhbXBsZSBub25jZQ==";

struct KeyFile {
  std::filesystem::path path;
  KeyFile() {
    path = std::filesystem::temp_directory_path() /
           ("mana-fuzz-gateway-key-" + std::to_string(::getpid()));
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << test_key;
  }
  ~KeyFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  KeyFile(const KeyFile&) = delete;
  KeyFile& operator=(const KeyFile&) = delete;
};

const KeyFile& key_file() {
  static const KeyFile k;
  return k;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- base64url and HS256
// -------------------------------------------------------------------------

std::string b64url(std::string_view in) {
  static constexpr char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const auto v = (static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8) |
                   static_cast<unsigned>(static_cast<unsigned char>(in[i + 2]));
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += tab[(v >> 6) & 63];
    out += tab[v & 63];
  }
  if (i + 1 == in.size()) {
    const auto v = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16;
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const auto v = (static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16) |
                   (static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8);
    out += tab[(v >> 18) & 63];
    out += tab[(v >> 12) & 63];
    out += tab[(v >> 6) & 63];
  }
  return out;
}

// Strict base64url without padding; nullopt on any other character or a dangling 6 bits.
std::optional<std::string> unb64url(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (const char c : in) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '-') v = 62;
    if (c == '_') v = 63;
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (bits >= 6) return std::nullopt;
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view msg) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md.data(), &len);
  return {reinterpret_cast<const char*>(md.data()), len};
}

// Oracle: what any correct HS256 verifier with `test_key` must require (necessary conditions).
bool token_acceptable(std::string_view token) {
  const auto d1 = token.find('.');
  if (d1 == std::string_view::npos) return false;
  const auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return false;
  const auto head = unb64url(token.substr(0, d1));
  const auto body = unb64url(token.substr(d1 + 1, d2 - d1 - 1));
  const auto sig = unb64url(token.substr(d2 + 1));
  if (!head || !body || !sig) return false;
  if (*sig != hmac_sha256(test_key, token.substr(0, d2))) return false;
  const auto h = nlohmann::json::parse(*head, nullptr, false);
  const auto b = nlohmann::json::parse(*body, nullptr, false);
  if (!h.is_object() || !b.is_object()) return false;
  if (!h.contains("alg") || h["alg"] != "HS256") return false;
  if (!b.contains("sub") || !b["sub"].is_string() || b["sub"].get<std::string>().empty())
    return false;
  if (!b.contains("exp") || !(b["exp"].is_number_integer() || b["exp"].is_number_unsigned()))
    return false;
  if (b["exp"].is_number_integer() &&
      b["exp"].get<std::int64_t>() < unix_now() - static_cast<std::int64_t>(clock_skew_s) - 2)
    return false;
  return true;
}

// ---- client frames
// -------------------------------------------------------------------------------

std::string client_frame(std::uint8_t b0, std::string_view payload, std::uint8_t mode) {
  std::string f;
  f += static_cast<char>(b0);
  const bool masked = (mode & 1) == 0;
  const bool long_len = (mode & 2) != 0;  // non-minimal 64-bit length
  const auto mbit = static_cast<std::uint8_t>(masked ? 0x80 : 0);
  const std::size_t n = payload.size();
  if (n < 126 && !long_len) {
    f += static_cast<char>(mbit | n);
  } else if (n <= 0xFFFF && !long_len) {
    f += static_cast<char>(mbit | 126);
    f += static_cast<char>((n >> 8) & 0xFF);
    f += static_cast<char>(n & 0xFF);
  } else {
    f += static_cast<char>(mbit | 127);
    for (int i = 7; i >= 0; --i)
      f += static_cast<char>((static_cast<std::uint64_t>(n) >> (8 * i)) & 0xFF);
  }
  const std::array<std::uint8_t, 4> mask =
      (mode & 4) != 0 ? std::array<std::uint8_t, 4>{0, 0, 0, 0}
                      : std::array<std::uint8_t, 4>{0x37, 0xfa, 0x21, 0x3d};
  if (masked)
    for (const auto m : mask)
      f += static_cast<char>(m);
  for (std::size_t i = 0; i < n; ++i)
    f += masked ? static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ mask[i % 4])
                : payload[i];
  return f;
}

struct Frame {
  bool fin = false;
  std::uint8_t rsv = 0;
  std::uint8_t opcode = 0;
  bool masked = false;
  std::string payload;
};

// Decodes one frame at `pos`; nullopt when incomplete.
std::optional<Frame> decode_frame(std::string_view s, std::size_t& pos) {
  std::size_t p = pos;
  if (s.size() - p < 2) return std::nullopt;
  Frame f;
  const auto b0 = static_cast<std::uint8_t>(s[p]);
  const auto b1 = static_cast<std::uint8_t>(s[p + 1]);
  p += 2;
  f.fin = (b0 & 0x80) != 0;
  f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 7);
  f.opcode = b0 & 0x0F;
  f.masked = (b1 & 0x80) != 0;
  std::uint64_t n = b1 & 0x7F;
  const std::size_t ext = n == 126 ? 2 : (n == 127 ? 8 : 0);
  if (s.size() - p < ext) return std::nullopt;
  if (ext != 0) {
    n = 0;
    for (std::size_t i = 0; i < ext; ++i)
      n = (n << 8) | static_cast<std::uint8_t>(s[p + i]);
    p += ext;
  }
  std::array<std::uint8_t, 4> mask{};
  if (f.masked) {
    if (s.size() - p < 4) return std::nullopt;
    for (std::size_t i = 0; i < 4; ++i)
      mask[i] = static_cast<std::uint8_t>(s[p + i]);
    p += 4;
  }
  if (s.size() - p < n) return std::nullopt;
  f.payload.assign(s.substr(p, static_cast<std::size_t>(n)));
  if (f.masked)
    for (std::size_t i = 0; i < f.payload.size(); ++i)
      f.payload[i] = static_cast<char>(static_cast<std::uint8_t>(f.payload[i]) ^ mask[i % 4]);
  pos = p + static_cast<std::size_t>(n);
  return f;
}

struct Message {
  bool text = false;
  std::string data;
};

// The first complete data message in `s` as a conforming server reads it (client frames must be
// masked, RSV 0 without extensions, known opcodes, continuations only inside a fragmented
// message); nullopt when there is none before the stream ends or turns invalid or closes.
std::optional<Message> first_client_message(std::string_view s) {
  std::size_t pos = 0;
  std::optional<Message> partial;
  while (auto f = decode_frame(s, pos)) {
    if (!f->masked || f->rsv != 0) return std::nullopt;
    if (f->opcode >= 8) {
      if (f->opcode > 10 || !f->fin || f->payload.size() > 125 || f->opcode == 8)
        return std::nullopt;
      continue;
    }
    if (f->opcode == 0) {
      if (!partial) return std::nullopt;
      partial->data += f->payload;
    } else if (f->opcode == 1 || f->opcode == 2) {
      if (partial) return std::nullopt;
      partial = Message{f->opcode == 1, f->payload};
    } else {
      return std::nullopt;
    }
    if (f->fin) return partial;
  }
  return std::nullopt;
}

// ---- the HTTP oracle
// -------------------------------------------------------------------------------

struct RequestView {
  bool complete = false;         // header (and empty body) parsed without error
  std::size_t header_bytes = 0;  // request line + fields + final CRLF
  bool header_complete = false;  // the header alone parsed (size known)
  std::optional<http::request<http::empty_body>> req;
};

RequestView parse_request(std::string_view bytes) {
  RequestView v;
  http::request_parser<http::empty_body> p;
  p.header_limit(1U << 20);
  p.body_limit(0);
  p.eager(false);
  beast::error_code ec;
  const std::size_t n = p.put(asio::buffer(bytes.data(), bytes.size()), ec);
  if (ec || !p.is_header_done()) return v;
  v.header_complete = true;
  v.header_bytes = n;
  std::size_t used = n;
  while (!p.is_done()) {
    const std::size_t k = p.put(asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    if (ec || k == 0) break;
    used += k;
  }
  if (!p.is_done()) {
    // A body-less request is done with its header; anything else is incomplete here.
    if (ec && ec != http::error::need_more) return v;
    if (!p.is_done()) return v;
  }
  v.complete = true;
  v.req = p.release();
  return v;
}

bool offers_mana(const http::request<http::empty_body>& req) {
  for (auto it = req.find(http::field::sec_websocket_protocol);
       it != req.end() && it->name() == http::field::sec_websocket_protocol; ++it) {
    std::string_view h = it->value();
    std::size_t pos = 0;
    while (pos <= h.size()) {
      std::size_t end = h.find(',', pos);
      if (end == std::string_view::npos) end = h.size();
      std::string_view t = h.substr(pos, end - pos);
      while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
        t.remove_prefix(1);
      while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
        t.remove_suffix(1);
      if (t == core::subprotocol) return true;
      pos = end + 1;
    }
  }
  return false;
}

struct PolicyVerdict {
  bool limits_ok = false;
  bool allowed = false;  // limits, path, Origin, subprotocol, upgrade
};

PolicyVerdict judge(const RequestView& v, const gw::Config& cfg) {
  PolicyVerdict out;
  if (!v.complete || !v.req) return out;
  const auto& req = *v.req;
  const auto fields = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
  out.limits_ok = v.header_bytes <= cfg.max_header_bytes && fields <= cfg.max_header_count;
  if (!out.limits_ok) return out;
  const std::string_view target = req.target();
  if (target.substr(0, target.find('?')) != cfg.path) return out;
  if (!beast::websocket::is_upgrade(req)) return out;
  const auto n_origin = req.count(http::field::origin);
  if (n_origin > 1) return out;
  if (n_origin == 1) {
    const std::string_view o = req[http::field::origin];
    if (std::find(std::begin(allowed_origins), std::end(allowed_origins), o) ==
        std::end(allowed_origins))
      return out;
  } else if (!cfg.allow_missing_origin) {
    return out;
  }
  out.allowed = offers_mana(req);
  return out;
}

// ---- request template ---------------------------------------------------------------------------

std::string upgrade_request(Reader& in, const gw::Config& cfg) {
  const std::uint8_t a = in.u8();
  const std::uint8_t b = in.u8();
  std::string path;
  switch (a & 3) {
    case 0:
      path = cfg.path;
      break;
    case 1:
      path = cfg.path + "?x=1";
      break;
    case 2:
      path = "/other";
      break;
    default:
      path = cfg.path + "/";
      break;
  }
  std::string r = ((a & 4) != 0 ? "POST " : "GET ") + path + " HTTP/1.1\r\nHost: gw.test\r\n";
  r += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  if ((a & 8) == 0) r += "Sec-WebSocket-Key: " + std::string(ws_key) + "\r\n";
  r += (a & 16) == 0 ? "Sec-WebSocket-Version: 13\r\n" : "Sec-WebSocket-Version: 8\r\n";
  switch ((a >> 5) & 7) {
    case 0:
      break;
    case 1:
      r += "Origin: https://app.example\r\n";
      break;
    case 2:
      r += "Origin: http://127.0.0.1:8080\r\n";
      break;
    case 3:
      r += "Origin: https://evil.example\r\n";
      break;
    case 4:
      r += "Origin: https://app.example\r\nOrigin: https://app.example\r\n";
      break;
    case 5:
      r += "Origin: https://APP.example\r\n";
      break;
    case 6:
      r += "Origin: null\r\n";
      break;
    default:
      r += "Origin: https://app.example.evil.example\r\n";
      break;
  }
  switch (b & 3) {
    case 0:
      r += "Sec-WebSocket-Protocol: mana.ssh.v1\r\n";
      break;
    case 1:
      r += "Sec-WebSocket-Protocol: chat, mana.ssh.v1\r\n";
      break;
    case 2:
      r += "Sec-WebSocket-Protocol: mana.ssh.v2\r\n";
      break;
    default:
      break;
  }
  if ((b & 4) != 0) r += "Sec-WebSocket-Extensions: permessage-deflate\r\n";
  r += in.rest();  // extra header text (the fuzzer's)
  if ((b & 8) == 0) r += "\r\n";
  return r;
}

// ---- signed hello -----------------------------------------------------------------------------

std::string signed_hello(Reader& in) {
  const std::uint8_t f = in.u8();
  const std::uint8_t g = in.u8();
  const auto exp_delta = static_cast<std::int16_t>(in.u16());
  const std::string sub = in.rest();
  nlohmann::json claims = nlohmann::json::object();
  if ((f & 1) == 0) claims["sub"] = sub;
  if ((f & 2) == 0) claims["exp"] = unix_now() + std::int64_t{exp_delta} * 10;
  if ((f & 4) != 0) claims["nbf"] = unix_now() + std::int64_t{exp_delta} * 10;
  if ((f & 8) != 0) claims["targets"] = nlohmann::json::array({"127.0.0.1:22"});
  const char* alg = (f & 0x30) == 0x10 ? "none" : ((f & 0x30) == 0x20 ? "HS512" : "HS256");
  const nlohmann::json head = {{"alg", alg}, {"typ", "JWT"}};
  const std::string signing =
      b64url(head.dump()) + "." +
      b64url(claims.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  const std::string_view key = (f & 0x40) != 0 ? wrong_key : test_key;
  const std::string token = signing + "." + b64url(hmac_sha256(key, signing));
  static constexpr const char* profiles[] = {"mana.v1", "json-base64.v1", "lenpfx.v1", "mana.v1"};
  nlohmann::json hello = {
      {"t", "hello"},
      {"proto", 1},
      {"auth", {{"scheme", "bearer"}, {"token", token}}},
      {"caps",
       {{"profile", profiles[g & 3]}, {"maxFrame", 1048576}, {"bidi", true}, {"resume", true}}}};
  return client_frame(0x81, hello.dump(), 0);
}

// ---- target policy probe ---------------------------------------------------------------------

gw::TargetRule cidr_rule(const char* text, std::vector<std::uint16_t> ports) {
  gw::TargetRule r;
  r.kind = gw::TargetRule::Kind::cidr;
  MANA_FUZZ_CHECK(gw::parse_cidr(text, r.network, r.prefix));
  r.ports = std::move(ports);
  r.text = text;
  return r;
}

gw::TargetRule name_rule(const char* name, std::vector<std::uint16_t> ports) {
  gw::TargetRule r;
  r.kind = gw::TargetRule::Kind::name;
  r.name = name;
  r.ports = std::move(ports);
  r.text = name;
  return r;
}

const gw::Config& policy_config() {
  static const gw::Config c = [] {
    gw::Config cfg;
    cfg.targets.push_back(cidr_rule("10.0.0.0/8", {22}));
    cfg.targets.push_back(cidr_rule("127.0.0.1", {2222}));
    cfg.targets.push_back(cidr_rule("::1", {22}));
    cfg.targets.push_back(cidr_rule("2001:db8::/32", {22, 2200}));
    cfg.targets.push_back(name_rule("ssh.example.com", {22}));
    cfg.targets.push_back(name_rule("bastion.example.org", {22, 443}));
    return cfg;
  }();
  return c;
}

struct Net {
  std::array<std::uint8_t, 16> bytes{};
  unsigned prefix = 0;
  bool v4 = false;
};

// The harness's own prefix match (independent of Policy::contains).
bool in_net(const asio::ip::address& a, bool v4, const std::array<std::uint8_t, 16>& net,
            unsigned prefix) {
  if (a.is_v4() != v4) return false;
  std::array<std::uint8_t, 16> x{};
  std::size_t len = 16;
  if (v4) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), x.begin());
    len = 4;
  } else {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), x.begin());
  }
  for (std::size_t i = 0; i < len; ++i) {
    const unsigned bits = prefix > i * 8 ? std::min(8U, prefix - static_cast<unsigned>(i * 8)) : 0;
    const auto mask = static_cast<std::uint8_t>(0xFF00U >> bits);
    if ((x[i] & mask) != (net[i] & mask)) return false;
  }
  return true;
}

// "ADDR[/PREFIX]" parsed with Asio (not with the gateway's parse_cidr).
bool net_of(std::string_view text, std::array<std::uint8_t, 16>& out, unsigned& prefix, bool& v4) {
  const auto slash = text.find('/');
  boost::system::error_code ec;
  const asio::ip::address a = asio::ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return false;
  v4 = a.is_v4();
  prefix = v4 ? 32 : 128;
  if (slash != std::string_view::npos)
    prefix = static_cast<unsigned>(std::stoul(std::string(text.substr(slash + 1))));
  out = {};
  if (v4) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  } else {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), out.begin());
  }
  return true;
}

// Loopback, private, link-local, unspecified, multicast, documentation, NAT64 and 6to4: never
// reachable through a host-name rule (a subset of what the gateway treats as special).
bool must_be_special(const asio::ip::address& a) {
  static constexpr const char* nets[] = {
      "0.0.0.0/8",      "10.0.0.0/8",   "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
      "192.168.0.0/16", "192.0.2.0/24", "224.0.0.0/4", "240.0.0.0/4",    "::/128",
      "::1/128",        "fe80::/10",    "fc00::/7",    "ff00::/8",       "2001:db8::/32",
      "64:ff9b::/96",   "2002::/16"};
  for (const char* n : nets) {
    std::array<std::uint8_t, 16> net{};
    unsigned prefix = 0;
    bool v4 = false;
    MANA_FUZZ_CHECK(net_of(n, net, prefix, v4));
    if (in_net(a, v4, net, prefix)) return true;
  }
  return false;
}

asio::ip::address own_normalise(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  if (a.is_v6()) {
    asio::ip::address_v6 v6 = a.to_v6();
    v6.scope_id(0);
    return v6;
  }
  return a;
}

void policy_probe(Reader& in) {
  const gw::Config& cfg = policy_config();
  const gw::Policy policy(cfg);
  static constexpr std::uint16_t ports[] = {22, 2222, 443, 2200, 80, 0};
  const std::uint8_t ps = in.u8();
  std::uint16_t port = ports[ps % 6];
  if (ps % 6 == 5) port = in.u16();
  std::optional<std::vector<std::string>> claims;
  switch (in.u8() % 3) {
    case 1:
      claims = std::vector<std::string>{"ssh.example.com:22"};
      break;
    case 2:
      claims = std::vector<std::string>{"[::1]:22", "10.1.2.3:22"};
      break;
    default:
      break;
  }
  std::vector<asio::ip::address> addresses;
  const std::uint8_t n = in.u8() % 5;
  for (std::uint8_t i = 0; i < n; ++i) {
    if ((in.u8() & 1) != 0) {
      asio::ip::address_v6::bytes_type b{};
      for (auto& x : b)
        x = in.u8();
      addresses.emplace_back(asio::ip::address_v6(b, in.u8() & 1));
    } else {
      asio::ip::address_v4::bytes_type b{};
      for (auto& x : b)
        x = in.u8();
      addresses.emplace_back(asio::ip::address_v4(b));
    }
  }
  const std::string host = in.rest();
  std::string resolve_name;
  const gw::PolicyDecision pre = policy.precheck(host, port, claims, resolve_name);
  if (!pre.allowed) return;
  const bool port_ruled = std::any_of(cfg.targets.begin(), cfg.targets.end(), [&](const auto& r) {
    return std::find(r.ports.begin(), r.ports.end(), port) != r.ports.end();
  });
  MANA_FUZZ_CHECK(port_ruled);
  if (claims)
    MANA_FUZZ_CHECK(std::find(claims->begin(), claims->end(),
                              gw::normalise_target(resolve_name, port)) != claims->end());
  const gw::PolicyDecision d = policy.check_resolved(resolve_name, port, addresses);
  if (!d.allowed) return;
  MANA_FUZZ_CHECK(!addresses.empty() && !d.endpoints.empty());
  for (const auto& raw : addresses) {
    const asio::ip::address a = own_normalise(raw);
    bool by_cidr = false;
    bool by_name = false;
    for (const auto& r : cfg.targets) {
      if (std::find(r.ports.begin(), r.ports.end(), port) == r.ports.end()) continue;
      if (r.kind == gw::TargetRule::Kind::cidr) {
        std::array<std::uint8_t, 16> net{};
        unsigned prefix = 0;
        bool v4 = false;
        MANA_FUZZ_CHECK(net_of(r.text, net, prefix, v4));
        by_cidr = by_cidr || in_net(a, v4, net, prefix);
      } else {
        by_name = by_name || r.name == resolve_name;
      }
    }
    MANA_FUZZ_CHECK(by_cidr || (by_name && !must_be_special(a)));
  }
  for (const auto& ep : d.endpoints) {
    MANA_FUZZ_CHECK(ep.port() == port);
    MANA_FUZZ_CHECK(std::any_of(addresses.begin(), addresses.end(),
                                [&](const auto& x) { return own_normalise(x) == ep.address(); }));
  }
}

// ---- one session over a socket pair -----------------------------------------------------------

struct ServerOutput {
  int status = 0;  // 0: no complete response
  bool protocol_mana = false;
  bool extensions = false;
  std::string after;  // bytes after the response
};

ServerOutput parse_output(const std::string& out) {
  ServerOutput r;
  if (out.empty()) return r;
  http::response_parser<http::string_body> p;
  p.body_limit(1U << 20);
  p.skip(false);
  beast::error_code ec;
  std::size_t used = 0;
  while (!p.is_done() && used < out.size()) {
    const std::size_t k = p.put(asio::buffer(out.data() + used, out.size() - used), ec);
    if (ec == http::error::need_more) break;
    MANA_FUZZ_CHECK(!ec);  // U1: the gateway writes well-formed HTTP
    used += k;
    if (k == 0) break;
  }
  if (!p.is_done() && p.is_header_done() && p.get().result_int() == 101) {
    // 101 has no body; Beast completes it with the header.
  }
  if (!p.is_header_done()) return r;
  const auto& res = p.get();
  r.status = static_cast<int>(res.result_int());
  r.protocol_mana = res[http::field::sec_websocket_protocol] == core::subprotocol;
  r.extensions = res.count(http::field::sec_websocket_extensions) != 0;
  if (!p.is_done()) {
    r.status = -1;  // a truncated response
    return r;
  }
  r.after = out.substr(used);
  return r;
}

class Client {
 public:
  explicit Client(int fd) : fd_(fd) {}
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Writes as much of `pending_` as the socket takes; reads everything available.
  void pump() {
    while (off_ < pending_.size() && fd_ >= 0) {
      const ssize_t n =
          ::send(fd_, pending_.data() + off_, std::min<std::size_t>(pending_.size() - off_, 65536),
                 MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n <= 0) break;
      off_ += static_cast<std::size_t>(n);
    }
    static std::array<char, 65536> buf;  // one thread; not cleared per call
    while (fd_ >= 0) {
      const ssize_t n = ::recv(fd_, buf.data(), buf.size(), MSG_DONTWAIT);
      if (n > 0) {
        out_.append(buf.data(), static_cast<std::size_t>(n));
        progress_ = true;
        continue;
      }
      if (n == 0) eof_ = true;
      break;
    }
  }
  void queue(const std::string& bytes) { pending_ += bytes; }
  [[nodiscard]] bool sent_all() const { return off_ == pending_.size(); }
  void shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool take_progress() {
    const bool p = progress_;
    progress_ = false;
    return p;
  }
  [[nodiscard]] const std::string& out() const { return out_; }
  [[nodiscard]] bool eof() const { return eof_; }

 private:
  int fd_;
  std::string pending_;
  std::size_t off_ = 0;
  std::string out_;
  bool eof_ = false;
  bool progress_ = false;
};

// Polls until nothing happens any more (bounded).
void settle(asio::io_context& io, Client& c) {
  for (int round = 0; round < 400; ++round) {
    c.pump();
    const std::size_t ran = io.poll();
    c.pump();
    const bool progress = c.take_progress();
    if (ran == 0 && !progress && c.sent_all()) return;
  }
}

void check_frames(const std::string& after, const std::optional<Message>& first_client,
                  const gw::Config& cfg, bool pipelined) {
  std::size_t pos = 0;
  bool hello_ok = false;
  bool any_data = false;
  std::optional<Message> partial;
  while (auto f = decode_frame(after, pos)) {
    // U4: server frames are never masked, RSV 0 (no extension), known opcodes.
    MANA_FUZZ_CHECK(!f->masked);
    MANA_FUZZ_CHECK(f->rsv == 0);
    MANA_FUZZ_CHECK(f->opcode <= 2 || (f->opcode >= 8 && f->opcode <= 10));
    if (f->opcode >= 8) continue;
    if (f->opcode != 0) partial = Message{f->opcode == 1, {}};
    MANA_FUZZ_CHECK(partial.has_value());
    partial->data += f->payload;
    if (!f->fin) continue;
    const Message m = *partial;
    partial.reset();
    if (!any_data) {
      any_data = true;
      if (m.text) {
        auto parsed = core::parse_control(m.data);
        hello_ok = parsed && std::holds_alternative<core::HelloOk>(parsed.value());
      }
      // U4: the first data message is the (text) hello_ok; nothing binary comes before it.
      MANA_FUZZ_CHECK(m.text && hello_ok);
    }
  }
  if (!hello_ok || pipelined) return;
  // U5: the session was accepted; the client's first message must deserve it.
  MANA_FUZZ_CHECK(first_client.has_value() && first_client->text);
  auto parsed = core::parse_control(first_client->data);
  MANA_FUZZ_CHECK(parsed && std::holds_alternative<core::Hello>(parsed.value()));
  const auto& hello = std::get<core::Hello>(parsed.value());
  MANA_FUZZ_CHECK(!hello.resume.has_value());
  if (!hello.auth || hello.auth->scheme == core::Auth::Scheme::none) {
    MANA_FUZZ_CHECK(cfg.allow_none);
  } else {
    MANA_FUZZ_CHECK(token_acceptable(hello.auth->token));
  }
}

void run_session(std::uint8_t flags, const std::string& before, const std::string& after) {
  gw::Config cfg;
  cfg.path = (flags & 8) != 0 ? "/ws" : "/";
  cfg.origins.assign(std::begin(allowed_origins), std::end(allowed_origins));
  cfg.allow_missing_origin = (flags & 1) != 0;
  cfg.allow_none = (flags & 2) != 0;
  cfg.resume = (flags & 4) == 0;
  cfg.jwt_secret_file = key_file().path.string();
  cfg.clock_skew_s = clock_skew_s;
  cfg.max_header_bytes = header_limit;
  cfg.max_header_count = header_count_limit;
  cfg.healthz = (flags & 16) == 0;
  cfg.metrics = (flags & 16) == 0;
  gw::validate_config(cfg);
  const bool pipelined = (flags & 32) != 0;
  const bool keep_open = (flags & 64) != 0;

  std::array<int, 2> fds{-1, -1};
  MANA_FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) == 0);
  asio::io_context io;
  {
    gw::Server server(io, cfg);
    Client client(fds[1]);
    {
      asio::ip::tcp::socket sock(io);
      sock.assign(asio::ip::tcp::v4(), fds[0]);
      server.serve(std::move(sock));
    }
    client.queue(before);
    if (pipelined) client.queue(after);
    settle(io, client);
    ServerOutput res = parse_output(client.out());
    if (!pipelined && res.status == 101) {
      client.queue(after);
      settle(io, client);
    }
    if (!keep_open) {
      client.shutdown_write();
      settle(io, client);
    }
    res = parse_output(client.out());

    const RequestView view = parse_request(before);
    const PolicyVerdict verdict = judge(view, cfg);
    // U1: a complete request is always answered; a non-101 answer is all there is.
    if (view.complete && view.header_bytes <= cfg.max_header_bytes)
      MANA_FUZZ_CHECK(res.status != 0);
    if (res.status > 0 && res.status != 101) MANA_FUZZ_CHECK(res.after.empty());
    // U2: what a 101 requires.
    if (res.status == 101) {
      MANA_FUZZ_CHECK(verdict.allowed);
      MANA_FUZZ_CHECK(res.protocol_mana && !res.extensions);
      check_frames(res.after, first_client_message(after), cfg, pipelined);
    }
    // U3: oversize headers get 431; an allowed request is not refused by policy.
    if (view.complete && !verdict.limits_ok && view.header_bytes > cfg.max_header_bytes + 4)
      MANA_FUZZ_CHECK(res.status == 431);
    if (view.header_complete && !view.complete && view.header_bytes > cfg.max_header_bytes + 4 &&
        res.status > 0)
      MANA_FUZZ_CHECK(res.status == 431);
    if (verdict.allowed)
      MANA_FUZZ_CHECK(res.status != 403 && res.status != 404 && res.status != 431);

    client.close();
    settle(io, client);
  }
  // The Server is gone; what is left in the io_context (pending handlers) is destroyed with it.
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  gw::set_log_level(gw::LogLevel::error);
  (void)key_file();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Reader in(data, size);
  const std::uint8_t flags = in.u8();
  gw::Config probe_cfg;
  probe_cfg.path = (flags & 8) != 0 ? "/ws" : "/";
  std::string before;
  std::string after;
  int records = 0;
  while (!in.empty() && ++records <= 64) {
    const std::uint8_t op = in.u8();
    const std::uint16_t len = in.u16();
    const std::string body = in.bytes(len);
    Reader r(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
    switch (op % 6) {
      case 0:
        before += body;
        break;
      case 1:
        before += upgrade_request(r, probe_cfg);
        break;
      case 2:
        after += body;
        break;
      case 3: {
        const std::uint8_t b0 = r.u8();
        const std::uint8_t mode = r.u8();
        after += client_frame(b0, r.rest(), mode);
        break;
      }
      case 4:
        after += signed_hello(r);
        break;
      default:
        policy_probe(r);
        break;
    }
  }
  if (!before.empty()) run_session(flags, before, after);
  return 0;
}
