#include "config.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <set>
#include <stdexcept>

#include <unistd.h>

#include <toml++/toml.h>

#include "mana/core/messages.hpp"

namespace mana::gateway {

namespace {

namespace ip = boost::asio::ip;

[[noreturn]] void fail(const std::string& msg) {
  throw std::runtime_error(msg);
}

void check_keys(const toml::table& t, const std::string& where,
                const std::set<std::string>& allowed) {
  for (const auto& [k, v] : t) {
    (void)v;
    const std::string key(k.str());
    if (allowed.count(key) == 0) {
      std::string msg = "unknown key '";
      msg += where;
      msg += key;
      msg += "'";
      fail(msg);
    }
  }
}

const toml::table* table_of(const toml::table& root, const char* name) {
  const toml::node* n = root.get(name);
  if (n == nullptr) return nullptr;
  const toml::table* t = n->as_table();
  if (t == nullptr) fail(std::string("'") + name + "' must be a table");
  return t;
}

template <class T>
void get_uint(const toml::table& t, const std::string& where, const char* key, T& out,
              std::uint64_t min = 0, std::uint64_t max = std::numeric_limits<T>::max()) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  auto v = n->value<std::int64_t>();
  if (!n->is_integer() || !v) fail(where + key + " must be an integer");
  if (*v < 0 || static_cast<std::uint64_t>(*v) < min || static_cast<std::uint64_t>(*v) > max)
    fail(where + key + " out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  out = static_cast<T>(*v);
}

void get_bool(const toml::table& t, const std::string& where, const char* key, bool& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  if (!n->is_boolean()) fail(where + key + " must be a boolean");
  out = *n->value<bool>();
}

void get_string(const toml::table& t, const std::string& where, const char* key, std::string& out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return;
  if (!n->is_string()) fail(where + key + " must be a string");
  out = *n->value<std::string>();
}

std::vector<std::string> get_strings(const toml::table& t, const std::string& where,
                                     const char* key) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (n == nullptr) return out;
  const toml::array* a = n->as_array();
  if (a == nullptr) fail(where + key + " must be an array of strings");
  for (const toml::node& e : *a) {
    if (!e.is_string()) fail(where + key + " must be an array of strings");
    out.push_back(*e.value<std::string>());
  }
  return out;
}

// Makes each non-empty relative path in `files` relative to `base` (the config file's folder).
void relative_to(const std::filesystem::path& base, std::initializer_list<std::string*> files) {
  for (std::string* f : files)
    if (!f->empty() && std::filesystem::path(*f).is_relative()) *f = (base / *f).string();
}

bool valid_origin(const std::string& o) {
  // scheme://host[:port], lower-case scheme and host, no path, no trailing slash.
  const auto p = o.find("://");
  if (p == std::string::npos || p == 0) return false;
  const std::string scheme = o.substr(0, p);
  const std::string rest = o.substr(p + 3);
  if (rest.empty() || rest.find('/') != std::string::npos) return false;
  for (char c : o)
    if (std::isupper(static_cast<unsigned char>(c)) || std::isspace(static_cast<unsigned char>(c)))
      return false;
  return scheme == "http" || scheme == "https";
}

}  // namespace

std::string default_route_id(const std::string& listen_host, std::uint16_t port) {
  std::string host = listen_host;
  boost::system::error_code ec;
  const ip::address a = ip::make_address(listen_host, ec);
  if (!ec && a.is_unspecified()) {
    std::array<char, 256> name{};
    if (::gethostname(name.data(), name.size() - 1) == 0 && name[0] != '\0') host = name.data();
  }
  std::string clean;
  for (const char ch : host) {
    const auto c = static_cast<unsigned char>(std::tolower(static_cast<unsigned char>(ch)));
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (keep) {
      clean += static_cast<char>(c);
    } else if (!clean.empty() && clean.back() != '-') {
      clean += '-';
    }
  }
  while (!clean.empty() && clean.back() == '-')
    clean.pop_back();
  const std::string suffix = "-" + std::to_string(port);
  if (clean.empty()) return "gw" + suffix;
  if (clean.size() + suffix.size() <= core::max_route_id_len) return clean + suffix;
  // FNV-1a of the whole host keeps shortened ids of different hosts apart.
  std::uint32_t h = 2166136261U;
  for (const char ch : host) {
    h ^= static_cast<unsigned char>(ch);
    h *= 16777619U;
  }
  static constexpr const char* hex = "0123456789abcdef";
  std::string tag = "-";
  for (int i = 7; i >= 0; --i)
    tag += hex[(h >> (static_cast<unsigned>(i) * 4U)) & 0xFU];
  clean.resize(core::max_route_id_len - tag.size() - suffix.size());
  while (!clean.empty() && clean.back() == '-')
    clean.pop_back();
  return clean + tag + suffix;
}

bool parse_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  std::string h;
  std::string p;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
    if (h.find(':') != std::string::npos) return false;  // bare IPv6 needs brackets
  }
  if (h.empty() || p.empty() || p.size() > 5) return false;
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  host = h;
  port = static_cast<std::uint16_t>(v);
  return true;
}

bool parse_cidr(const std::string& text, ip::address& net, unsigned& prefix) {
  const auto slash = text.find('/');
  const std::string addr = text.substr(0, slash);
  boost::system::error_code ec;
  ip::address a = ip::make_address(addr, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) a = ip::make_address_v4(ip::v4_mapped, a.to_v6());
  const unsigned bits = a.is_v4() ? 32U : 128U;
  unsigned p = bits;
  if (slash != std::string::npos) {
    const std::string ps = text.substr(slash + 1);
    if (ps.empty() || ps.size() > 3) return false;
    p = 0;
    for (char c : ps) {
      if (c < '0' || c > '9') return false;
      p = p * 10 + static_cast<unsigned>(c - '0');
    }
    if (p > bits) return false;
  }
  net = a;
  prefix = p;
  return true;
}

Config load_config(const std::string& path) {
  Config c;
  c.source = path;
  toml::parse_result res = toml::parse_file(path);
  if (!res) {
    const auto& err = res.error();
    fail(path + ":" + std::to_string(err.source().begin.line) + ": " +
         std::string(err.description()));
  }
  const toml::table& root = res.table();
  check_keys(root, "",
             {"server", "origins", "auth", "targets", "session", "limits", "relay", "tls", "rate"});
  const std::filesystem::path base = std::filesystem::path(path).parent_path();

  if (const toml::table* t = table_of(root, "server")) {
    const std::string w = "server.";
    check_keys(
        *t, w,
        {"listen", "route_id", "path", "max_header_bytes", "max_header_count", "healthz", "metrics",
         "debug_sessions", "log_level", "shutdown_grace_ms", "drain_timeout_ms", "http_timeout_ms",
         "max_http_connections", "max_http_connections_per_ip", "proxy_protocol", "trusted_proxies",
         "forwarded_header", "drain_health_status", "handover_socket"});
    std::string listen;
    get_string(*t, w, "listen", listen);
    if (!listen.empty() && !parse_host_port(listen, c.listen_host, c.listen_port))
      fail("server.listen must be HOST:PORT");
    get_string(*t, w, "route_id", c.route_id);
    if (t->get("route_id") != nullptr && !core::is_route_id(c.route_id))
      fail("server.route_id must match ^[a-z0-9-]{1,32}$ (it goes into URLs; not a secret)");
    get_string(*t, w, "path", c.path);
    get_uint(*t, w, "max_header_bytes", c.max_header_bytes, 512, 1 << 20);
    get_uint(*t, w, "max_header_count", c.max_header_count, 8, 1000);
    get_bool(*t, w, "healthz", c.healthz);
    get_bool(*t, w, "metrics", c.metrics);
    get_bool(*t, w, "debug_sessions", c.debug_sessions);
    get_string(*t, w, "log_level", c.log_level);
    get_uint(*t, w, "shutdown_grace_ms", c.shutdown_grace_ms, 0, 600000);
    get_uint(*t, w, "drain_timeout_ms", c.drain_timeout_ms, 0, 86400000);
    get_uint(*t, w, "drain_health_status", c.drain_health_status, 404, 503);
    if (c.drain_health_status != 404 && c.drain_health_status != 503)
      fail("server.drain_health_status must be 503 or 404");
    get_string(*t, w, "handover_socket", c.handover_socket);
    get_uint(*t, w, "http_timeout_ms", c.http_timeout_ms, 100, 600000);
    get_uint(*t, w, "max_http_connections", c.max_http_connections, 1, 1000000);
    get_uint(*t, w, "max_http_connections_per_ip", c.max_http_connections_per_ip, 1, 1000000);
    std::string mode;
    get_string(*t, w, "proxy_protocol", mode);
    if (!mode.empty() && !parse_proxy_mode(mode, c.proxy_protocol))
      fail("server.proxy_protocol must be \"off\", \"v1\", \"v2\" or \"any\"");
    std::string header;
    get_string(*t, w, "forwarded_header", header);
    if (!header.empty() && !parse_forwarded_header(header, c.forwarded_header))
      fail("server.forwarded_header must be \"x-forwarded-for\" or \"forwarded\"");
    c.trusted_proxies_text = get_strings(*t, w, "trusted_proxies");
    if (c.trusted_proxies_text.size() > TrustedProxies::max_entries)
      fail("server.trusted_proxies has more than " + std::to_string(TrustedProxies::max_entries) +
           " entries");
    std::vector<Cidr> blocks;
    for (const std::string& e : c.trusted_proxies_text) {
      Cidr block;
      if (!parse_cidr_block(e, block))
        fail("server.trusted_proxies entry '" + e + "' is not an address or CIDR");
      blocks.push_back(block);
    }
    c.trusted_proxies = TrustedProxies(std::move(blocks));
  }
  if (const toml::table* t = table_of(root, "tls")) {
    const std::string w = "tls.";
    check_keys(*t, w, {"cert_file", "key_file"});
    get_string(*t, w, "cert_file", c.tls_cert_file);
    get_string(*t, w, "key_file", c.tls_key_file);
    relative_to(base, {&c.tls_cert_file, &c.tls_key_file});
  }
  if (const toml::table* t = table_of(root, "rate")) {
    const std::string w = "rate.";
    check_keys(*t, w,
               {"open_rate", "open_burst", "ping_rate", "ping_burst", "resume_fail_rate",
                "resume_fail_burst"});
    get_uint(*t, w, "open_rate", c.open_rate, 1, 1000000);
    get_uint(*t, w, "open_burst", c.open_burst, 1, 1000000);
    get_uint(*t, w, "ping_rate", c.ping_rate, 1, 1000000);
    get_uint(*t, w, "ping_burst", c.ping_burst, 1, 1000000);
    get_uint(*t, w, "resume_fail_rate", c.resume_fail_rate, 1, 1000000);
    get_uint(*t, w, "resume_fail_burst", c.resume_fail_burst, 1, 1000000);
  }
  if (const toml::table* t = table_of(root, "origins")) {
    const std::string w = "origins.";
    check_keys(*t, w, {"allow", "allow_missing"});
    c.origins = get_strings(*t, w, "allow");
    get_bool(*t, w, "allow_missing", c.allow_missing_origin);
  }
  if (const toml::table* t = table_of(root, "auth")) {
    const std::string w = "auth.";
    check_keys(
        *t, w,
        {"jwt_secret_file", "jwks_file", "issuer", "audience", "allow_none", "clock_skew_s"});
    get_string(*t, w, "jwt_secret_file", c.jwt_secret_file);
    get_string(*t, w, "jwks_file", c.jwks_file);
    relative_to(base, {&c.jwt_secret_file, &c.jwks_file});
    get_string(*t, w, "issuer", c.issuer);
    get_string(*t, w, "audience", c.audience);
    if (c.issuer.size() > 1024 || c.audience.size() > 1024)
      fail("auth.issuer and auth.audience are at most 1024 bytes");
    get_bool(*t, w, "allow_none", c.allow_none);
    get_uint(*t, w, "clock_skew_s", c.clock_skew_s, 0, 3600);
  }
  if (const toml::node* n = root.get("targets")) {
    const toml::array* a = n->as_array();
    if (a == nullptr) fail("targets must be an array of tables ([[targets]])");
    for (const toml::node& e : *a) {
      const toml::table* t = e.as_table();
      if (t == nullptr) fail("targets must be an array of tables ([[targets]])");
      const std::string w = "targets.";
      check_keys(*t, w, {"host", "cidr", "ports"});
      TargetRule r;
      std::string host;
      std::string cidr;
      get_string(*t, w, "host", host);
      get_string(*t, w, "cidr", cidr);
      if (host.empty() == cidr.empty()) fail("each [[targets]] needs exactly one of host, cidr");
      if (!cidr.empty()) {
        if (!parse_cidr(cidr, r.network, r.prefix)) fail("targets.cidr '" + cidr + "' invalid");
        r.kind = TargetRule::Kind::cidr;
        r.text = cidr;
      } else if (parse_cidr(host, r.network, r.prefix) && host.find('/') == std::string::npos) {
        r.kind = TargetRule::Kind::cidr;  // an address literal is a one-address CIDR
        r.text = host;
      } else {
        std::string n2 = host;
        std::transform(n2.begin(), n2.end(), n2.begin(),
                       [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
        if (!n2.empty() && n2.back() == '.') n2.pop_back();
        if (n2.empty() || n2.size() > 253) fail("targets.host '" + host + "' invalid");
        for (char ch : n2)
          if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.'))
            fail("targets.host '" + host + "' is not a host name or address");
        r.kind = TargetRule::Kind::name;
        r.name = n2;
        r.text = host;
      }
      const toml::node* pn = t->get("ports");
      const toml::array* pa = pn != nullptr ? pn->as_array() : nullptr;
      if (pa == nullptr || pa->empty()) fail("targets.ports must be a non-empty array");
      for (const toml::node& p : *pa) {
        auto v = p.value<std::int64_t>();
        if (!p.is_integer() || !v || *v < 1 || *v > 65535)
          fail("targets.ports entries must be 1..65535");
        r.ports.push_back(static_cast<std::uint16_t>(*v));
      }
      c.targets.push_back(std::move(r));
    }
  }
  if (const toml::table* t = table_of(root, "session")) {
    const std::string w = "session.";
    check_keys(
        *t, w,
        {"max_frame", "window", "max_window", "max_channels", "control_rate", "control_burst",
         "free_message_rate", "free_message_burst", "free_message_refill_bytes",
         "free_message_min_payload", "heartbeat_ms", "heartbeat_misses", "idle_timeout_ms",
         "handshake_timeout_ms", "resume", "resume_ttl_ms"});
    get_uint(*t, w, "max_frame", c.max_frame, 65545, 16777216);
    get_uint(*t, w, "window", c.window, 1024, 1 << 30);
    get_uint(*t, w, "max_window", c.max_window, 1024, 1 << 30);
    get_uint(*t, w, "max_channels", c.max_channels, 1, 1024);
    get_uint(*t, w, "control_rate", c.control_rate, 1, 1000000);
    get_uint(*t, w, "control_burst", c.control_burst, 1, 1000000);
    get_uint(*t, w, "free_message_rate", c.free_message_rate, 1, 1000000);
    get_uint(*t, w, "free_message_burst", c.free_message_burst, 1, 1000000);
    get_uint(*t, w, "free_message_refill_bytes", c.free_message_refill_bytes, 1, 1 << 30);
    get_uint(*t, w, "free_message_min_payload", c.free_message_min_payload, 1, 65536);
    get_uint(*t, w, "heartbeat_ms", c.heartbeat_ms, 100, 3600000);
    get_uint(*t, w, "heartbeat_misses", c.heartbeat_misses, 1, 100);
    get_uint(*t, w, "idle_timeout_ms", c.idle_timeout_ms, 100, 86400000);
    get_uint(*t, w, "handshake_timeout_ms", c.handshake_timeout_ms, 100, 600000);
    get_bool(*t, w, "resume", c.resume);
    get_uint(*t, w, "resume_ttl_ms", c.resume_ttl_ms, 100, 86400000);
  }
  if (const toml::table* t = table_of(root, "limits")) {
    const std::string w = "limits.";
    check_keys(*t, w,
               {"max_connections", "max_connections_per_ip", "max_sessions_per_principal",
                "ipv6_prefix", "outbound_high_water", "outbound_low_water", "outbound_max"});
    get_uint(*t, w, "max_connections", c.max_connections, 1, 1000000);
    get_uint(*t, w, "max_connections_per_ip", c.max_connections_per_ip, 1, 1000000);
    get_uint(*t, w, "max_sessions_per_principal", c.max_sessions_per_principal, 1, 1000000);
    get_uint(*t, w, "ipv6_prefix", c.ipv6_prefix, 32, 128);
    get_uint(*t, w, "outbound_high_water", c.outbound_high_water, 1024, 1ULL << 32);
    get_uint(*t, w, "outbound_low_water", c.outbound_low_water, 0, 1ULL << 32);
    get_uint(*t, w, "outbound_max", c.outbound_max, 1024, 1ULL << 34);
  }
  if (const toml::table* t = table_of(root, "relay")) {
    const std::string w = "relay.";
    check_keys(*t, w,
               {"connect_timeout_ms", "banner_timeout_ms", "banner_max_bytes", "read_chunk"});
    get_uint(*t, w, "connect_timeout_ms", c.connect_timeout_ms, 10, 600000);
    get_uint(*t, w, "banner_timeout_ms", c.banner_timeout_ms, 10, 600000);
    get_uint(*t, w, "banner_max_bytes", c.banner_max_bytes, 256, 1 << 20);
    get_uint(*t, w, "read_chunk", c.read_chunk, 1024, 16 << 20);
  }
  return c;
}

bool origin_allowed(const Config& c, std::string_view origin) {
  return std::any_of(c.origins.begin(), c.origins.end(),
                     [&](const std::string& o) { return o == origin; });
}

void validate_config(const Config& c) {
  for (const auto& o : c.origins)
    if (!valid_origin(o))
      throw std::runtime_error("origins.allow entry '" + o +
                               "' must be an exact lower-case scheme://host[:port]");
  if (c.path.empty() || c.path.front() != '/')
    throw std::runtime_error("server.path must start with /");
  if (c.tls_cert_file.empty() != c.tls_key_file.empty())
    throw std::runtime_error("tls.cert_file and tls.key_file must be set together");
  if (c.max_window < c.window) throw std::runtime_error("session.max_window < session.window");
  if (c.outbound_low_water >= c.outbound_high_water)
    throw std::runtime_error("limits.outbound_low_water must be below outbound_high_water");
  if (c.proxy_protocol != ProxyMode::off && c.trusted_proxies.empty())
    throw std::runtime_error(
        "server.proxy_protocol needs server.trusted_proxies: the balancers' addresses (a PROXY "
        "header is accepted from those peers only)");
  if (c.ipv6_prefix < 32 || c.ipv6_prefix > 128)
    throw std::runtime_error("limits.ipv6_prefix out of range [32, 128]");
  if (!c.handover_socket.empty()) {
    // sockaddr_un.sun_path holds 108 bytes with the terminating NUL.
    if (c.handover_socket.front() != '/' || c.handover_socket.size() > 107)
      throw std::runtime_error(
          "server.handover_socket must be an absolute path of at most 107 bytes");
    if (c.drain_timeout_ms == 0)
      throw std::runtime_error(
          "server.handover_socket needs server.drain_timeout_ms > 0: the old process drains for "
          "that long after the handover");
  }
  if (c.outbound_max < c.outbound_high_water + c.max_frame)
    throw std::runtime_error("limits.outbound_max must exceed outbound_high_water + max_frame");
}

}  // namespace mana::gateway
