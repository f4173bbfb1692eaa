// Gateway configuration: TOML file (toml++) plus CLI overrides.
//
// Secure defaults: an empty file (or no file) allows no Origin, no missing Origin, no target and
// no unauthenticated client. Every knob, its default and its meaning are listed in
// gateway/examples/dev.toml and in --help. Unknown keys are errors (a typo must not silently
// weaken policy).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "client_address.hpp"
#include "proxy_protocol.hpp"

namespace mana::gateway {

// One target allowlist entry: a host name (matched on the name the client asked for, then every
// resolved address must be public) or an address / CIDR (matched on the resolved address; this
// is how loopback, private and link-local addresses are allowed explicitly).
struct TargetRule {
  enum class Kind : std::uint8_t { name, cidr };
  Kind kind = Kind::cidr;
  std::string name;                  // Kind::name: lower case, no trailing dot
  boost::asio::ip::address network;  // Kind::cidr (IPv4-mapped IPv6 stored as IPv4)
  unsigned prefix = 0;
  std::vector<std::uint16_t> ports;  // at least one
  std::string text;                  // as written in the config (for logs)
};

struct Config {
  // [server]
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 8022;
  // hello_ok.route (PROTOCOL.md §9.8): a balancer routes `?route=<id>` to this gateway. Not
  // secret, ^[a-z0-9-]{1,32}$. Empty: default_route_id() of the listen address and bound port.
  std::string route_id;
  std::string path = "/";               // WebSocket endpoint path
  std::size_t max_header_bytes = 8192;  // request line + headers
  std::size_t max_header_count = 64;
  bool healthz = true;          // GET /healthz -> 200
  bool metrics = true;          // GET /metrics -> Prometheus text
  bool debug_sessions = false;  // GET /debug/sessions from loopback peers only (debug_view.cpp)
  std::string log_level = "info";
  std::uint32_t shutdown_grace_ms = 5000;  // after the 1001 closes: time allowed for them
  // SIGTERM/SIGINT: > 0 drains first (healthz 503, hellos refused with 4010, resumes and running
  // sessions go on) for at most this long; 0 closes every session at once with 1001.
  std::uint32_t drain_timeout_ms = 0;
  // What /healthz answers while draining: 503 (any balancer: out of rotation) or 404 (HAProxy's
  // `http-check disable-on-404`: NOLB, so routed resumes still arrive). Stopping: always 503.
  std::uint32_t drain_health_status = 503;
  // Same-host upgrade (handover.hpp): a Unix socket path (absolute, created mode 0600). A gateway
  // started while another listens there takes over its listener; the old one drains. Empty: off.
  std::string handover_socket;
  std::uint32_t http_timeout_ms = 10000;     // TLS handshake + HTTP request + WebSocket upgrade
  std::uint32_t max_http_connections = 256;  // TCP connections not yet upgraded, globally
  std::uint32_t max_http_connections_per_ip = 16;  // ... and per client address
  // Behind reverse proxies (client_address.hpp, proxy_protocol.hpp, docs/gateway.md): a PROXY
  // header before TLS/HTTP, and X-Forwarded-For / Forwarded, both only from these peers.
  ProxyMode proxy_protocol = ProxyMode::off;
  TrustedProxies trusted_proxies;                 // empty: no peer is a proxy (headers ignored)
  std::vector<std::string> trusted_proxies_text;  // as written (logs)
  ForwardedHeader forwarded_header = ForwardedHeader::x_forwarded_for;

  // [tls] (both set: wss with OpenSSL, TLS 1.2+; relative paths are relative to the config file)
  std::string tls_cert_file;  // PEM certificate chain
  std::string tls_key_file;   // PEM private key

  // [origins]
  std::vector<std::string> origins;  // exact "scheme://host[:port]"
  bool allow_missing_origin = false;

  // [auth]
  std::string jwt_secret_file;  // HS256 key; relative paths are relative to the config file
  std::string jwks_file;        // RS256/ES256/EdDSA public keys by kid (jwk.hpp); relative ditto
  std::string issuer;           // non-empty: the `iss` claim must equal it
  std::string audience;         // non-empty: the `aud` claim must be or contain it
  bool allow_none = false;      // accept hello.auth scheme "none" (principal "anonymous")
  std::uint32_t clock_skew_s = 30;

  // [[targets]]
  std::vector<TargetRule> targets;

  // [session] (ServerSession)
  std::uint32_t max_frame = 1 << 20;
  std::uint64_t window = 256 * 1024;
  std::uint64_t max_window = 2 * 1024 * 1024;
  std::uint32_t max_channels = 4;
  std::uint32_t control_rate = 50;
  std::uint32_t control_burst = 100;
  // Messages that move no payload (free_budget.hpp, docs/gateway.md): a token bucket per
  // connection refilled by time and by payload moved; over: close 4004.
  std::uint32_t free_message_rate = 100;           // tokens per second
  std::uint32_t free_message_burst = 1000;         // bucket size
  std::uint32_t free_message_refill_bytes = 4096;  // payload bytes moved per token
  std::uint32_t free_message_min_payload = 16;     // data messages delivering less are free
  std::uint32_t heartbeat_ms = 20000;
  std::uint32_t heartbeat_misses = 3;
  std::uint32_t idle_timeout_ms = 60000;
  std::uint32_t handshake_timeout_ms = 10000;
  bool resume = true;
  std::uint32_t resume_ttl_ms = 60000;

  // [limits]
  std::uint32_t max_connections = 1024;           // WebSockets open at once
  std::uint32_t max_connections_per_ip = 64;      // WebSockets open at once per client address
  std::uint32_t max_sessions_per_principal = 16;  // live sessions (attached or detached)
  std::uint32_t ipv6_prefix = 64;  // IPv6 clients share per-IP limits per /ipv6_prefix network
  std::size_t outbound_high_water = 4 * 1024 * 1024;  // set pause reason "transport"
  std::size_t outbound_low_water = 1024 * 1024;       // clear it
  std::size_t outbound_max = 32 * 1024 * 1024;        // hard cap: close the connection (4015)

  // [rate] per client IP address, token buckets (rate per second, burst); over: close 4004
  std::uint32_t open_rate = 10;  // channel opens
  std::uint32_t open_burst = 40;
  std::uint32_t ping_rate = 10;  // pings from clients
  std::uint32_t ping_burst = 50;
  std::uint32_t resume_fail_rate = 1;  // failed resume attempts
  std::uint32_t resume_fail_burst = 10;

  // [relay]
  std::uint32_t connect_timeout_ms = 10000;
  std::uint32_t banner_timeout_ms = 10000;
  std::size_t banner_max_bytes = 8192;  // bytes read while looking for "SSH-"
  std::size_t read_chunk = 256 * 1024;  // target read size (further limited by credit)

  std::string source;  // the file read (empty: built-in defaults)
};

// Loads `path` (throws std::runtime_error with a readable message on any error).
Config load_config(const std::string& path);
// Validates cross-field constraints (throws std::runtime_error).
void validate_config(const Config& c);
// The default route id: the listen host (the machine's host name for a wildcard address) and
// port, lower-cased, every other character '-' ("127.0.0.1", 8022 -> "127-0-0-1-8022"); a host
// too long for 32 characters is shortened and made unique by a hash of it.
[[nodiscard]] std::string default_route_id(const std::string& listen_host, std::uint16_t port);
// Parses "HOST:PORT" or "[V6]:PORT". Returns false on error.
bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port);
// Parses an address or CIDR ("10.0.0.0/8", "::1", "127.0.0.1"). Strict (inet_pton) syntax.
bool parse_cidr(const std::string& text, boost::asio::ip::address& net, unsigned& prefix);
// Exact-match Origin allowlist check (never compared with Host). A missing Origin header is
// decided by Config::allow_missing_origin, not here.
[[nodiscard]] bool origin_allowed(const Config& c, std::string_view origin);

}  // namespace mana::gateway
