// mana-gateway: SSH-in-the-browser WebSocket gateway. See --help and gateway/examples/dev.toml.
#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include <boost/asio/io_context.hpp>

#include "config.hpp"
#include "log.hpp"
#include "server.hpp"

namespace {

constexpr const char* help_text = R"(Usage: mana-gateway [--config FILE] [--listen HOST:PORT]
       mana-gateway --help | --version

Relays the channels of mana.ssh.v1 WebSocket sessions to SSH servers over TCP and enforces
policy (Origin allowlist, JWT authentication, target allowlist, SSH banner gate, caps).

Options:
  --config FILE        TOML configuration (see gateway/examples/dev.toml for every knob).
                       Without it the built-in defaults apply, which deny everything.
  --listen HOST:PORT   Listen address, overrides [server] listen (default 127.0.0.1:8022;
                       port 0 picks a free port, logged in the "listening" line).
  --help               Show this help.
  --version            Show the version.

Defaults deny: no Origin is allowed, a missing Origin is refused, no target is allowed, and
clients must present a bearer JWT (HS256, or RS256/ES256/EdDSA chosen by kid from a JWKS)
unless [auth] allow_none = true.

Configuration ([section] key = default):
  [server]   listen = "127.0.0.1:8022", route_id = "" (hello_ok.route, [a-z0-9-]{1,32};
             empty: from the listen host and port), path = "/", max_header_bytes = 8192,
             max_header_count = 64, healthz = true, metrics = true, log_level = "info",
             shutdown_grace_ms = 5000, drain_timeout_ms = 0, drain_health_status = 503
             (/healthz while draining; 404 for HAProxy's disable-on-404), http_timeout_ms = 10000,
             max_http_connections = 256, max_http_connections_per_ip = 16
  [tls]      cert_file = "", key_file = "" (PEM; both set: wss, TLS 1.2+; relative to
             the config file)
  [origins]  allow = [] (exact "scheme://host[:port]"), allow_missing = false
  [auth]     jwt_secret_file = "" (HS256 key, >= 32 bytes; relative to the config file),
             jwks_file = "" (RS256/ES256/EdDSA public keys by kid; relative likewise),
             issuer = "" (set: iss must equal it), audience = "" (set: aud must hold it),
             allow_none = false, clock_skew_s = 30
  [[targets]] host = "name or address" | cidr = "10.0.0.0/8", ports = [22]
             (loopback, link-local, private and unspecified addresses are reachable only
             through an address/CIDR rule, never through a host-name rule)
  [session]  max_frame = 1048576, window = 262144, max_window = 2097152, max_channels = 4,
             control_rate = 50, control_burst = 100, free_message_rate = 100,
             free_message_burst = 1000, free_message_refill_bytes = 4096,
             free_message_min_payload = 16 (messages moving no payload; over: 4004),
             heartbeat_ms = 20000, heartbeat_misses = 3, idle_timeout_ms = 60000,
             handshake_timeout_ms = 10000, resume = true, resume_ttl_ms = 60000
  [limits]   max_connections = 1024, max_connections_per_ip = 64,
             max_sessions_per_principal = 16, outbound_high_water = 4194304,
             outbound_low_water = 1048576, outbound_max = 33554432
  [rate]     per client IP (token buckets; over: close 4004): open_rate = 10,
             open_burst = 40, ping_rate = 10, ping_burst = 50, resume_fail_rate = 1,
             resume_fail_burst = 10
  [relay]    connect_timeout_ms = 10000, banner_timeout_ms = 10000, banner_max_bytes = 8192,
             read_chunk = 262144

Endpoints: GET <path> with a WebSocket upgrade (subprotocol mana.ssh.v1), GET /healthz,
GET /metrics (Prometheus text). Logs: JSON lines on stderr.
Signals: SIGTERM/SIGINT drain when [server] drain_timeout_ms > 0 (/healthz 503 or 404, new sessions
refused with 4010, resumes and running sessions go on; then 1001), otherwise (and on a second
one) close every session with 1001; exit 0 once drained. SIGHUP re-reads the config file, the
TLS certificate and key and the JWT secret/JWKS without dropping connections (an invalid one
keeps the old; listen, TLS on/off, [rate] and session.max_frame need a restart).
)";

// The configuration as the command line names it: the file (or the defaults), --listen over
// server.listen, the cross-field checks and the log level. Throws with the reason. Startup and
// SIGHUP (Server::reload) both use it.
mana::gateway::Config load(const std::string& config_path, const std::string& listen) {
  using namespace mana::gateway;  // NOLINT(google-build-using-namespace)
  Config cfg = config_path.empty() ? Config{} : load_config(config_path);
  if (!listen.empty() && !parse_host_port(listen, cfg.listen_host, cfg.listen_port)) {
    // Port 0 is allowed on the command line (tests pick a free port).
    if (listen.size() > 2 && listen.substr(listen.size() - 2) == ":0") {
      std::uint16_t dummy = 0;
      if (!parse_host_port(listen.substr(0, listen.size() - 1) + "1", cfg.listen_host, dummy))
        throw std::runtime_error("--listen must be HOST:PORT");
      cfg.listen_port = 0;
    } else {
      throw std::runtime_error("--listen must be HOST:PORT");
    }
  }
  validate_config(cfg);
  LogLevel level = LogLevel::info;
  if (!parse_log_level(cfg.log_level, level))
    throw std::runtime_error("server.log_level must be debug, info, warn or error");
  return cfg;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mana::gateway;  // NOLINT(google-build-using-namespace)
  std::string config_path;
  std::string listen;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(help_text, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("mana-gateway %s\n", MANA_GATEWAY_VERSION);
      return 0;
    }
    if ((a == "--config" || a == "--listen") && i + 1 < argc) {
      (a == "--config" ? config_path : listen) = argv[++i];
      continue;
    }
    std::fprintf(stderr, "mana-gateway: unknown or incomplete option '%s' (try --help)\n",
                 a.c_str());
    return 2;
  }
  try {
    const Config cfg = load(config_path, listen);
    LogLevel level = LogLevel::info;
    (void)parse_log_level(cfg.log_level, level);
    set_log_level(level);

    boost::asio::io_context io;
    Server server(io, cfg);
    if (!config_path.empty())
      server.set_config_loader([config_path, listen] { return load(config_path, listen); });
    server.start();
    io.run();
    log_info("exit", {{"status", 0}});
    return 0;
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "mana-gateway: %s\n", ex.what());
    return 1;
  }
}
