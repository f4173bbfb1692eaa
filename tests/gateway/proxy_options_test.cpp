// mana-proxy command line: --url (parsed by mana_host's WsUrl), options, token file, backoff.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "options.hpp"
#include "test_util.hpp"

using mana::gateway::test::TempDir;
using mana::proxy::backoff_ms;
using mana::proxy::Options;
using mana::proxy::parse_args;
using mana::proxy::ParseOutcome;
using mana::proxy::read_token_file;

TEST_CASE("mana-proxy --url: parsed by host::parse_ws_url; user info names --token-file") {
  Options o;
  auto r = parse_args({"--url", "wss://[::1]:9443/ssh?x=1", "h", "22"}, o);
  REQUIRE(r.outcome == ParseOutcome::run);
  CHECK(o.url.host == "::1");
  CHECK(o.url.port == "9443");
  CHECK(o.url.path == "/ssh?x=1");
  r = parse_args({"--url", "ws://a:b@h/", "h", "22"}, o);
  CHECK(r.outcome == ParseOutcome::error);
  CHECK(r.message.find("user info") != std::string::npos);
  CHECK(r.message.find("--token-file") != std::string::npos);
}

TEST_CASE("mana-proxy options: required, defaults and validation") {
  Options o;
  auto parse = [&o](const std::vector<std::string>& a) { return parse_args(a, o); };
  CHECK(parse({"--help"}).outcome == ParseOutcome::help);
  CHECK(parse({"--version"}).outcome == ParseOutcome::version);

  auto r = parse({"--url", "ws://127.0.0.1:8022/", "host", "22"});
  REQUIRE(r.outcome == ParseOutcome::run);
  CHECK(o.target_host == "host");
  CHECK(o.target_port == 22);
  CHECK(o.profile == "mana.v1");
  CHECK(o.token_file.empty());
  CHECK(o.origin.empty());
  CHECK(o.reconnect_min_ms == 100);
  CHECK(o.reconnect_max_ms == 5000);
  CHECK(o.reconnect_timeout_ms == 60000);

  r = parse({"--url=wss://gw:9443/x", "--token-file", "/t", "--origin", "https://app", "--profile",
             "lenpfx.v1", "--ca-file", "/ca.pem", "--reconnect-min-ms", "20",
             "--reconnect-max-ms=200", "--reconnect-timeout-ms", "1000", "-v", "h", "2222"});
  REQUIRE(r.outcome == ParseOutcome::run);
  CHECK(o.url.tls);
  CHECK(o.token_file == "/t");
  CHECK(o.origin == "https://app");
  CHECK(o.profile == "lenpfx.v1");
  CHECK(o.ca_file == "/ca.pem");
  CHECK(o.reconnect_min_ms == 20);
  CHECK(o.reconnect_max_ms == 200);
  CHECK(o.reconnect_timeout_ms == 1000);
  CHECK(o.verbose);
  CHECK(o.target_port == 2222);

  const std::vector<std::vector<std::string>> bad = {
      {"h", "22"},                                                 // no --url
      {"--url", "ws://g/", "h"},                                   // no port
      {"--url", "ws://g/", "h", "22", "x"},                        // extra argument
      {"--url", "ws://g/", "h", "0"},                              // port range
      {"--url", "ws://g/", "h", "70000"},                          //
      {"--url", "ws://g/", "--profile", "bogus", "h", "22"},       // unknown profile
      {"--url", "ws://g/", "--ca-file", "/ca", "h", "22"},         // ca without wss
      {"--url", "ws://g/", "--reconnect-min-ms", "0", "h", "22"},  // zero
      {"--url", "ws://g/", "--reconnect-min-ms", "9", "--reconnect-max-ms", "5", "h", "22"},
      {"--url", "ws://g/", "--frobnicate", "1", "h", "22"},  // unknown option
      {"--url", "ws://g/", "h", "22", "--token-file"},       // missing value
      {"--url", "ws://user:secret@g/", "h", "22"},           // credentials in URL
  };
  for (const auto& b : bad) {
    INFO(b.size());
    CHECK(parse(b).outcome == ParseOutcome::error);
  }
}

TEST_CASE("token file: trimmed, non-empty, printable, bounded") {
  TempDir dir;
  auto write = [&dir](const std::string& name, const std::string& text) {
    return dir.write(name, text);
  };
  std::string tok;
  REQUIRE_FALSE(read_token_file(write("ok", "  eyJ.abc.def\n"), tok));
  CHECK(tok == "eyJ.abc.def");
  CHECK(read_token_file((dir.path() / "missing").string(), tok).has_value());
  CHECK(read_token_file(write("empty", " \n\t"), tok).has_value());
  CHECK(read_token_file(write("space", "ab cd"), tok).has_value());
  CHECK(read_token_file(write("ctl", std::string("ab\x01", 3)), tok).has_value());
  CHECK(read_token_file(write("long", std::string(8193, 'a')), tok).has_value());
  REQUIRE_FALSE(read_token_file(write("max", std::string(8192, 'a')), tok));
  CHECK(tok.size() == 8192);
  // An error message names the file but never echoes the token.
  const auto err = read_token_file(write("ctl2", std::string("secretpart\x02", 11)), tok);
  REQUIRE(err.has_value());
  CHECK(err->find("secretpart") == std::string::npos);
}

TEST_CASE("reconnect backoff: doubles, capped, half fixed and half jitter") {
  CHECK(backoff_ms(0, 100, 5000, 0.0) == 50);
  CHECK(backoff_ms(0, 100, 5000, 0.999) == 99);
  CHECK(backoff_ms(1, 100, 5000, 0.0) == 100);
  CHECK(backoff_ms(3, 100, 5000, 0.0) == 400);
  CHECK(backoff_ms(6, 100, 5000, 0.0) == 2500);
  CHECK(backoff_ms(40, 100, 5000, 1.0) == 5000);
  CHECK(backoff_ms(1000, 100, 5000, 0.5) == 3750);
  for (std::uint32_t a = 0; a < 64; ++a) {
    const auto d = backoff_ms(a, 100, 5000, 0.7);
    CHECK(d >= 50);
    CHECK(d <= 5000);
  }
}
