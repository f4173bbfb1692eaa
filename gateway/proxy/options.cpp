#include "options.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <iterator>

namespace mana::proxy {

const char* const help_text =
    R"(Usage: mana-proxy --url ws[s]://HOST[:PORT][/PATH] [options] TARGET_HOST TARGET_PORT
       mana-proxy --help | --version

Carries stdin/stdout as one `tcp` channel of a mana.ssh.v1 WebSocket session through
mana-gateway to TARGET_HOST:TARGET_PORT. Made for OpenSSH's ProxyCommand:

  ssh -o ProxyCommand='mana-proxy --url ws://127.0.0.1:8022/ --token-file ~/.mana/token %h %p' user@host

After a network drop it reconnects with exponential backoff and jitter and resumes the session
(no byte lost or duplicated), so the SSH session survives. When a resume is impossible (the
gateway refused it, or --reconnect-timeout passed) it prints why and exits with status 1.

Options:
  --url URL                 Gateway endpoint, ws:// or wss:// (required). No user info.
  --token-file FILE         Bearer token (JWT) for hello.auth, read from FILE (never from the
                            command line). Without it the scheme "none" is used, which
                            gateways refuse unless configured to allow it.
  --origin ORIGIN           Send this Origin header (default: none).
  --profile ID              Wire profile: mana.v1 (default), json-base64.v1, lenpfx.v1.
  --ca-file FILE            wss: trust the CA certificates in FILE (PEM) in addition to the
                            system store. The server name is always verified.
  --connect-timeout-ms N    TCP + TLS + WebSocket handshake time per attempt (default 10000).
  --reconnect-min-ms N      First reconnect delay (default 100).
  --reconnect-max-ms N      Largest reconnect delay (default 5000).
  --reconnect-timeout-ms N  Give up resuming after N ms without success (default 60000).
  -v, --verbose             Log state changes and resumes to stderr.
  --help                    Show this help.
  --version                 Show the version.

Flow control: stdin is read only while the gateway has granted credit; credit for data from
the target is returned only after it was written to stdout, so a blocked stdout stops the
target (through the gateway) instead of filling memory.
Exit status: 0 when the target or stdin closed normally, 1 on a connection/session error,
2 on a usage error.
)";

namespace {

bool parse_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty()) return false;
  const auto* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc{} && p == end;
}

}  // namespace

ParseResult parse_args(const std::vector<std::string>& args, Options& out) {
  Options o;
  std::vector<std::string> positional;
  auto fail = [](std::string m) { return ParseResult{ParseOutcome::error, std::move(m)}; };
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return {ParseOutcome::help, {}};
    if (a == "--version") return {ParseOutcome::version, {}};
    if (a == "-v" || a == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                        args.end());
      break;
    }
    if (a.size() > 1 && a[0] == '-') {
      std::string name = a;
      std::string value;
      const auto eq = a.find('=');
      if (eq != std::string::npos) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
      } else {
        if (i + 1 >= args.size()) return fail("option " + a + " needs a value");
        value = args[++i];
      }
      std::uint32_t* num = nullptr;
      if (name == "--url") {
        if (auto err = host::parse_ws_url(value, o.url)) {
          if (value.find('@') != std::string::npos) *err += "; give the token with --token-file";
          return fail("--url: " + *err);
        }
        o.url_text = value;
      } else if (name == "--token-file") {
        o.token_file = value;
      } else if (name == "--origin") {
        o.origin = value;
      } else if (name == "--profile") {
        o.profile = value;
      } else if (name == "--ca-file") {
        o.ca_file = value;
      } else if (name == "--connect-timeout-ms") {
        num = &o.connect_timeout_ms;
      } else if (name == "--reconnect-min-ms") {
        num = &o.reconnect_min_ms;
      } else if (name == "--reconnect-max-ms") {
        num = &o.reconnect_max_ms;
      } else if (name == "--reconnect-timeout-ms") {
        num = &o.reconnect_timeout_ms;
      } else {
        return fail("unknown option " + name);
      }
      if (num != nullptr && (!parse_u32(value, *num) || *num == 0))
        return fail(name + " needs a positive integer");
      continue;
    }
    positional.push_back(a);
  }
  if (o.url_text.empty()) return fail("--url is required");
  if (positional.size() != 2) return fail("expected TARGET_HOST TARGET_PORT");
  o.target_host = positional[0];
  if (o.target_host.empty() || o.target_host.size() > 253) return fail("bad TARGET_HOST");
  std::uint32_t port = 0;
  if (!parse_u32(positional[1], port) || port < 1 || port > 65535)
    return fail("TARGET_PORT must be 1..65535");
  o.target_port = static_cast<std::uint16_t>(port);
  if (o.profile != "mana.v1" && o.profile != "json-base64.v1" && o.profile != "lenpfx.v1")
    return fail("--profile must be mana.v1, json-base64.v1 or lenpfx.v1");
  if (o.reconnect_min_ms > o.reconnect_max_ms)
    return fail("--reconnect-min-ms must not exceed --reconnect-max-ms");
  if (!o.ca_file.empty() && !o.url.tls) return fail("--ca-file needs a wss:// URL");
  out = std::move(o);
  return {ParseOutcome::run, {}};
}

std::optional<std::string> read_token_file(const std::string& path, std::string& token) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "cannot read token file " + path;
  std::string text;
  constexpr std::size_t max_file = 16384;
  text.resize(max_file + 1);
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(f.gcount()));
  if (text.size() > max_file) return "token file " + path + " is too large";
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!text.empty() && is_space(text.back()))
    text.pop_back();
  const auto first = std::find_if_not(text.begin(), text.end(), is_space);
  text.erase(text.begin(), first);
  if (text.empty()) return "token file " + path + " is empty";
  if (text.size() > 8192) return "token in " + path + " is longer than 8192 bytes";
  const bool printable =
      std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (!printable) return "token in " + path + " has non-printable characters";
  token = std::move(text);
  return std::nullopt;
}

std::uint32_t backoff_ms(std::uint32_t attempt, std::uint32_t min_ms, std::uint32_t max_ms,
                         double unit) {
  std::uint64_t d = min_ms;
  for (std::uint32_t i = 0; i < attempt && d < max_ms; ++i)
    d *= 2;
  d = std::min<std::uint64_t>(d, max_ms);
  const double u = std::clamp(unit, 0.0, 1.0);
  const auto half = d / 2;
  return static_cast<std::uint32_t>(half +
                                    static_cast<std::uint64_t>(static_cast<double>(d - half) * u));
}

}  // namespace mana::proxy
