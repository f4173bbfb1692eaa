// Gateway configuration: secure defaults, strict parsing (unknown keys are errors), validation.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "auth.hpp"
#include "config.hpp"
#include "mana/core/messages.hpp"
#include "test_util.hpp"

using mana::gateway::Config;
using mana::gateway::default_route_id;
using mana::gateway::load_config;
using mana::gateway::origin_allowed;
using mana::gateway::parse_cidr;
using mana::gateway::parse_host_port;
using mana::gateway::TargetRule;
using mana::gateway::validate_config;
using mana::gateway::test::config_from;
using mana::gateway::test::TempDir;
namespace ip = boost::asio::ip;

namespace {

// Expects load_config to throw a message containing `needle`.
void require_load_error(const std::string& toml, const std::string& needle) {
  try {
    (void)config_from(toml);
    FAIL("load_config accepted: " << toml);
  } catch (const std::runtime_error& ex) {
    INFO("message: " << ex.what());
    CHECK(std::string(ex.what()).find(needle) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("config: an empty file keeps the deny-everything defaults", "[gateway][config]") {
  for (const Config& c : {Config{}, config_from("")}) {
    CHECK(c.origins.empty());
    CHECK_FALSE(c.allow_missing_origin);
    CHECK(c.jwt_secret_file.empty());
    CHECK_FALSE(c.allow_none);
    CHECK(c.targets.empty());
    CHECK(c.listen_host == "127.0.0.1");
    CHECK(c.listen_port == 8022);
    CHECK(c.path == "/");
    CHECK(c.clock_skew_s == 30);
    CHECK(c.max_connections == 1024);
    CHECK(c.max_connections_per_ip == 64);
    CHECK(c.max_sessions_per_principal == 16);
    CHECK(c.outbound_max == 32U * 1024 * 1024);
    CHECK(c.banner_max_bytes == 8192);
    CHECK_NOTHROW(validate_config(c));
  }
}

TEST_CASE("config: an empty config denies every Origin", "[gateway][config]") {
  const Config c = config_from("");
  for (const char* o : {"http://localhost:8080", "https://example.com", "null", "", "file://"})
    CHECK_FALSE(origin_allowed(c, o));
  CHECK_FALSE(c.allow_missing_origin);  // a request without Origin is refused too
}

TEST_CASE("config: the Origin allowlist is an exact match", "[gateway][config]") {
  const Config c = config_from(R"([origins]
allow = ["http://localhost:8080", "https://app.example.com"]
)");
  CHECK(origin_allowed(c, "http://localhost:8080"));
  CHECK(origin_allowed(c, "https://app.example.com"));
  CHECK_FALSE(origin_allowed(c, "http://localhost:8080/"));
  CHECK_FALSE(origin_allowed(c, "HTTP://localhost:8080"));
  CHECK_FALSE(origin_allowed(c, "http://localhost:8081"));
  CHECK_FALSE(origin_allowed(c, "http://localhost"));
  CHECK_FALSE(origin_allowed(c, "http://localhost:8080.evil.com"));
  CHECK_FALSE(origin_allowed(c, "http://app.example.com"));  // scheme matters
  CHECK_FALSE(origin_allowed(c, "https://evil-app.example.com"));
  CHECK_FALSE(origin_allowed(c, "null"));
  CHECK_FALSE(c.allow_missing_origin);
}

TEST_CASE("config: unknown keys are errors", "[gateway][config]") {
  require_load_error("bogus = 1\n", "unknown key 'bogus'");
  require_load_error("[serverr]\nlisten = \"127.0.0.1:1\"\n", "unknown key 'serverr'");
  require_load_error("[server]\nlisen = \"127.0.0.1:1\"\n", "unknown key 'server.lisen'");
  require_load_error("[origins]\nallowed = []\n", "unknown key 'origins.allowed'");
  require_load_error("[auth]\nallow_anonymous = true\n", "unknown key 'auth.allow_anonymous'");
  require_load_error("[[targets]]\nhost = \"a.example\"\nport = [22]\n",
                     "unknown key 'targets.port'");
  require_load_error("[session]\nmax_frames = 70000\n", "unknown key 'session.max_frames'");
  require_load_error("[limits]\nmax_conn = 1\n", "unknown key 'limits.max_conn'");
  require_load_error("[relay]\nbanner_bytes = 1000\n", "unknown key 'relay.banner_bytes'");
}

TEST_CASE("config: syntax, type and range errors", "[gateway][config]") {
  require_load_error("[server\n", "gateway.toml:");
  require_load_error("server = 1\n", "'server' must be a table");
  require_load_error("[server]\nhealthz = \"yes\"\n", "server.healthz must be a boolean");
  require_load_error("[server]\nlisten = \"nohostport\"\n", "server.listen must be HOST:PORT");
  require_load_error("[server]\nmax_header_bytes = 10\n", "server.max_header_bytes out of range");
  require_load_error("[session]\nmax_frame = 1024\n", "session.max_frame out of range");
  require_load_error("[session]\nmax_channels = -1\n", "session.max_channels out of range");
  require_load_error("[session]\nwindow = 1.5\n", "session.window must be an integer");
  require_load_error("[origins]\nallow = \"http://a\"\n", "must be an array of strings");
  require_load_error("[auth]\nclock_skew_s = 4000\n", "auth.clock_skew_s out of range");
  require_load_error("targets = 1\n", "targets must be an array of tables");
}

TEST_CASE("config: [[targets]] rules", "[gateway][config]") {
  require_load_error("[[targets]]\nports = [22]\n", "exactly one of host, cidr");
  require_load_error("[[targets]]\nhost = \"a.example\"\ncidr = \"10.0.0.0/8\"\nports = [22]\n",
                     "exactly one of host, cidr");
  require_load_error("[[targets]]\ncidr = \"10.0.0.0/33\"\nports = [22]\n", "invalid");
  require_load_error("[[targets]]\ncidr = \"127.1/32\"\nports = [22]\n", "invalid");
  require_load_error("[[targets]]\nhost = \"a.example\"\n", "ports must be a non-empty array");
  require_load_error("[[targets]]\nhost = \"a.example\"\nports = []\n", "non-empty array");
  require_load_error("[[targets]]\nhost = \"a.example\"\nports = [0]\n", "1..65535");
  require_load_error("[[targets]]\nhost = \"a.example\"\nports = [65536]\n", "1..65535");
  require_load_error("[[targets]]\nhost = \"a_b/c\"\nports = [22]\n", "not a host name");

  const Config c = config_from(R"([[targets]]
host = "SSH.Example.COM."
ports = [22, 2222]

[[targets]]
host = "127.0.0.1"
ports = [2222]

[[targets]]
cidr = "10.1.0.0/16"
ports = [22]

[[targets]]
cidr = "::ffff:192.168.1.7"
ports = [22]
)");
  REQUIRE(c.targets.size() == 4);
  CHECK(c.targets[0].kind == TargetRule::Kind::name);
  CHECK(c.targets[0].name == "ssh.example.com");
  CHECK(c.targets[0].ports == std::vector<std::uint16_t>{22, 2222});
  CHECK(c.targets[1].kind == TargetRule::Kind::cidr);  // an address is a one-address CIDR
  CHECK(c.targets[1].network == ip::make_address("127.0.0.1"));
  CHECK(c.targets[1].prefix == 32);
  CHECK(c.targets[2].network == ip::make_address("10.1.0.0"));
  CHECK(c.targets[2].prefix == 16);
  CHECK(c.targets[3].network.is_v4());  // IPv4-mapped stored as IPv4
}

TEST_CASE("config: auth.jwt_secret_file is relative to the config file", "[gateway][config]") {
  TempDir dir;
  const std::string path = dir.write("gw.toml", "[auth]\njwt_secret_file = \"key\"\n");
  const Config c = load_config(path);
  CHECK(c.jwt_secret_file == (dir.path() / "key").string());
  const Config abs = config_from("[auth]\njwt_secret_file = \"/etc/mana/key\"\n");
  CHECK(abs.jwt_secret_file == "/etc/mana/key");
}

TEST_CASE("config: an empty config denies unauthenticated clients", "[gateway][config][auth]") {
  const mana::gateway::Authenticator auth(config_from(""));
  CHECK_FALSE(auth.jwt_enabled());
  CHECK_FALSE(auth.check(std::nullopt, 1'700'000'000).ok);
  mana::core::Auth none;
  CHECK_FALSE(auth.check(none, 1'700'000'000).ok);
  mana::core::Auth bearer;
  bearer.scheme = mana::core::Auth::Scheme::bearer;
  bearer.token = "eyJhbGciOiJIUzI1NiJ9.e30.x";
  CHECK_FALSE(auth.check(bearer, 1'700'000'000).ok);
}

TEST_CASE("config: validate_config cross-field checks", "[gateway][config]") {
  Config c;
  c.origins = {"http://localhost:8080"};
  CHECK_NOTHROW(validate_config(c));
  for (const char* bad : {"http://localhost:8080/", "HTTP://localhost", "localhost:8080",
                          "ftp://localhost", "http://", "http://a b"}) {
    Config b;
    b.origins = {bad};
    CHECK_THROWS_WITH(validate_config(b), Catch::Contains("origins.allow"));
  }
  Config p;
  p.path = "ws";
  CHECK_THROWS_WITH(validate_config(p), Catch::Contains("server.path"));
  Config w;
  w.window = w.max_window + 1;
  CHECK_THROWS_WITH(validate_config(w), Catch::Contains("max_window"));
  Config lw;
  lw.outbound_low_water = lw.outbound_high_water;
  CHECK_THROWS_WITH(validate_config(lw), Catch::Contains("outbound_low_water"));
  Config om;
  om.outbound_max = om.outbound_high_water;
  CHECK_THROWS_WITH(validate_config(om), Catch::Contains("outbound_max"));
}

TEST_CASE("config: gateway/examples/dev.toml loads and validates", "[gateway][config]") {
  // ctest runs the binary from the source root (catch_discover_tests WORKING_DIRECTORY).
  const std::string path = "gateway/examples/dev.toml";
  REQUIRE(std::filesystem::exists(path));
  const Config c = load_config(path);
  CHECK_NOTHROW(validate_config(c));
  CHECK(c.listen_port == 8022);
  CHECK(c.allow_missing_origin);
  CHECK_FALSE(c.allow_none);
  REQUIRE(c.targets.size() == 1);
  CHECK(c.targets[0].ports == std::vector<std::uint16_t>{2222});
  // The development key is generated locally and never committed: it names a
  // file next to dev.toml.
  CHECK(std::filesystem::path(c.jwt_secret_file).filename() == "dev-jwt-secret");
  CHECK(std::filesystem::path(c.jwt_secret_file).parent_path().filename() == "examples");
}

TEST_CASE("config: [server] route_id and its default", "[gateway][config]") {
  CHECK(config_from("").route_id.empty());  // derived once the port is bound
  CHECK(config_from("[server]\nroute_id = \"gw-1\"\n").route_id == "gw-1");
  CHECK(config_from("[server]\nroute_id = \"" + std::string(32, 'z') + "\"\n").route_id ==
        std::string(32, 'z'));
  // It goes into URLs and HAProxy server names: strict pattern, nothing else.
  for (const char* bad : {R"("")", R"("GW1")", R"("gw_1")", R"("gw 1")", R"("gw/1")", R"("gw?x")",
                          R"("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")", "7"}) {
    CAPTURE(bad);
    require_load_error(std::string("[server]\nroute_id = ") + bad + "\n",
                       bad[0] == '7' ? "must be a string" : "server.route_id must match");
  }
  CHECK(default_route_id("127.0.0.1", 8022) == "127-0-0-1-8022");
  CHECK(default_route_id("::1", 9000) == "1-9000");
  CHECK(default_route_id("GW.Example.ORG", 443) == "gw-example-org-443");
  // A wildcard address names the machine instead (same host:port on every machine otherwise).
  for (const char* any : {"0.0.0.0", "::"}) {
    const std::string id = default_route_id(any, 8022);
    CAPTURE(id);
    CHECK(mana::core::is_route_id(id));
    CHECK(id.find("0-0-0-0") == std::string::npos);
  }
  // Too long: shortened, a hash keeps different hosts apart, the port stays.
  const std::string a = default_route_id("very-long-host-name-number-one.example.org", 65535);
  const std::string b = default_route_id("very-long-host-name-number-two.example.org", 65535);
  CHECK(mana::core::is_route_id(a));
  CHECK(mana::core::is_route_id(b));
  CHECK(a != b);
  CHECK(a.size() == 32);
  CHECK(a.substr(a.size() - 6) == "-65535");
}

TEST_CASE("config: parse_host_port", "[gateway][config]") {
  std::string h;
  std::uint16_t p = 0;
  CHECK(parse_host_port("127.0.0.1:22", h, p));
  CHECK((h == "127.0.0.1" && p == 22));
  CHECK(parse_host_port("[::1]:2222", h, p));
  CHECK((h == "::1" && p == 2222));
  CHECK(parse_host_port("ssh.example.com:65535", h, p));
  for (const char* bad : {"", "host", "host:", ":22", "host:0", "host:65536", "host:22x", "::1:22",
                          "[::1]22", "[::1]", "host:123456"})
    CHECK_FALSE(parse_host_port(bad, h, p));
}

TEST_CASE("config: parse_cidr is strict", "[gateway][config]") {
  ip::address a;
  unsigned prefix = 0;
  CHECK(parse_cidr("10.0.0.0/8", a, prefix));
  CHECK((a == ip::make_address("10.0.0.0") && prefix == 8));
  CHECK(parse_cidr("::1", a, prefix));
  CHECK(prefix == 128);
  CHECK(parse_cidr("::ffff:127.0.0.1", a, prefix));
  CHECK((a.is_v4() && prefix == 32));
  for (const char* bad : {"127.1", "2130706433", "0x7f.0.0.1", "10.0.0.0/33", "::/129", "10.0.0.0/",
                          "10.0.0.0/a", "localhost", ""})
    CHECK_FALSE(parse_cidr(bad, a, prefix));
}

TEST_CASE("config: [tls], [rate] and the HTTP-phase limits", "[gateway][config]") {
  const Config d = config_from("");
  CHECK(d.tls_cert_file.empty());
  CHECK(d.tls_key_file.empty());
  CHECK(d.http_timeout_ms == 10000);
  CHECK(d.max_http_connections == 256);
  CHECK(d.max_http_connections_per_ip == 16);
  CHECK(d.open_rate == 10);
  CHECK(d.open_burst == 40);
  CHECK(d.ping_rate == 10);
  CHECK(d.ping_burst == 50);
  CHECK(d.resume_fail_rate == 1);
  CHECK(d.resume_fail_burst == 10);

  TempDir dir;
  const std::string path =
      dir.write("gw.toml",
                "[tls]\ncert_file = \"c.pem\"\nkey_file = \"/etc/k.pem\"\n"
                "[server]\nhttp_timeout_ms = 500\nmax_http_connections = 9\n"
                "max_http_connections_per_ip = 3\n"
                "[rate]\nopen_rate = 2\nopen_burst = 3\nping_rate = 4\nping_burst = 5\n"
                "resume_fail_rate = 6\nresume_fail_burst = 7\n");
  const Config c = load_config(path);
  CHECK(c.tls_cert_file == (dir.path() / "c.pem").string());  // relative to the config file
  CHECK(c.tls_key_file == "/etc/k.pem");
  CHECK(c.http_timeout_ms == 500);
  CHECK(c.max_http_connections == 9);
  CHECK(c.max_http_connections_per_ip == 3);
  CHECK(c.open_rate == 2);
  CHECK(c.open_burst == 3);
  CHECK(c.ping_rate == 4);
  CHECK(c.ping_burst == 5);
  CHECK(c.resume_fail_rate == 6);
  CHECK(c.resume_fail_burst == 7);
  CHECK_NOTHROW(validate_config(c));

  require_load_error("[tls]\ncert = \"x\"\n", "unknown key 'tls.cert'");
  require_load_error("[rate]\nopen_rate = 0\n", "rate.open_rate out of range");
  require_load_error("[server]\nhttp_timeout_ms = 10\n", "server.http_timeout_ms out of range");
  Config half;
  half.tls_cert_file = "/x.pem";
  CHECK_THROWS_WITH(validate_config(half), Catch::Contains("set together"));
}

TEST_CASE("config: server.drain_timeout_ms", "[gateway][config]") {
  CHECK(config_from("").drain_timeout_ms == 0);  // SIGTERM closes at once unless set
  CHECK(config_from("[server]\ndrain_timeout_ms = 3600000\n").drain_timeout_ms == 3600000);
  require_load_error("[server]\ndrain_timeout_ms = 86400001\n",
                     "server.drain_timeout_ms out of range");
  require_load_error("[server]\ndrain_timeout_ms = -1\n", "server.drain_timeout_ms");
}

TEST_CASE("config: server.drain_health_status", "[gateway][config]") {
  CHECK(config_from("").drain_health_status == 503);  // any balancer: out of rotation
  CHECK(config_from("[server]\ndrain_health_status = 404\n").drain_health_status == 404);
  CHECK(config_from("[server]\ndrain_health_status = 503\n").drain_health_status == 503);
  require_load_error("[server]\ndrain_health_status = 410\n",
                     "server.drain_health_status must be 503 or 404");
  require_load_error("[server]\ndrain_health_status = 200\n",
                     "server.drain_health_status out of range");
  require_load_error("[server]\ndrain_health_status = \"404\"\n",
                     "server.drain_health_status must be an integer");
}

TEST_CASE("config: reverse proxies (proxy_protocol, trusted_proxies, ipv6_prefix)",
          "[gateway][config]") {
  const Config d = config_from("");
  CHECK(d.proxy_protocol == mana::gateway::ProxyMode::off);  // off unless configured
  CHECK(d.trusted_proxies.empty());                          // no peer is trusted
  CHECK(d.forwarded_header == mana::gateway::ForwardedHeader::x_forwarded_for);
  CHECK(d.ipv6_prefix == 64);

  const Config c = config_from(
      "[server]\nproxy_protocol = \"v2\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\", "
      "\"2001:db8::/32\"]\nforwarded_header = \"forwarded\"\n[limits]\nipv6_prefix = 56\n");
  CHECK(c.proxy_protocol == mana::gateway::ProxyMode::v2);
  REQUIRE(c.trusted_proxies.size() == 3);
  CHECK(c.trusted_proxies.blocks()[0].contains(ip::make_address("10.2.3.4")));
  CHECK(c.trusted_proxies.contains(ip::make_address("::1")));
  CHECK_FALSE(c.trusted_proxies.contains(ip::make_address("11.0.0.1")));
  CHECK(c.trusted_proxies_text[2] == "2001:db8::/32");
  CHECK(c.forwarded_header == mana::gateway::ForwardedHeader::forwarded);
  CHECK(c.ipv6_prefix == 56);
  CHECK_NOTHROW(validate_config(c));

  require_load_error("[server]\nproxy_protocol = \"on\"\n",
                     "server.proxy_protocol must be \"off\", \"v1\", \"v2\" or \"any\"");
  require_load_error("[server]\nproxy_protocol = true\n", "server.proxy_protocol must be a string");
  require_load_error("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                     "server.trusted_proxies entry '10.0.0.0/33' is not an address or CIDR");
  require_load_error("[server]\ntrusted_proxies = [\"proxy.example\"]\n", "'proxy.example'");
  require_load_error("[server]\ntrusted_proxies = \"10.0.0.0/8\"\n", "must be an array");
  require_load_error("[server]\nforwarded_header = \"x-real-ip\"\n", "server.forwarded_header");
  require_load_error("[limits]\nipv6_prefix = 16\n", "limits.ipv6_prefix out of range [32, 128]");
  require_load_error("[limits]\nipv6_prefix = 129\n", "limits.ipv6_prefix out of range");
  // A PROXY listener with no trusted balancer would believe any peer: refused.
  CHECK_THROWS_WITH(validate_config(config_from("[server]\nproxy_protocol = \"v1\"\n")),
                    Catch::Contains("server.proxy_protocol needs server.trusted_proxies"));
}
