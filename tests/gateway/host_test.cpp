// SPDX-License-Identifier: Apache-2.0
// mana_host (gateway/host/): the ws:// URL parser, the clocks, SessionTimer's rearm policies and H2
// (a cancelled or destroyed timer never runs its handler), Pump's re-entrancy rule. ClientLink is
// exercised by the proxy and gateway tests against real peers (ssh_proxy_test.py, bench selftest).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "mana/core/types.hpp"
#include "mana/host/clock.hpp"
#include "mana/host/pump.hpp"
#include "mana/host/session_timer.hpp"
#include "mana/host/ws_url.hpp"

namespace {

using mana::core::Duration;
using mana::core::Timestamp;
using mana::host::Pump;
using mana::host::SessionTimer;

Timestamp in_ms(std::int64_t ms) {
  return mana::host::mono_now() + Duration::from_ms(ms);
}

}  // namespace

TEST_CASE("host clocks: mono_now is steady_clock, unix_now is the wall clock", "[host]") {
  const auto before = std::chrono::steady_clock::now();
  const Timestamp t = mana::host::mono_now();
  const auto after = std::chrono::steady_clock::now();
  CHECK(mana::host::to_steady(t) >= before);
  CHECK(mana::host::to_steady(t) <= after);
  CHECK(mana::host::mono_now() >= t);
  const std::int64_t wall = static_cast<std::int64_t>(std::time(nullptr));
  CHECK(mana::host::unix_now() >= wall - 1);
  CHECK(mana::host::unix_now() <= wall + 1);
}

TEST_CASE("SessionTimer exact: fires once at the deadline, re-armed when it changes", "[host]") {
  boost::asio::io_context io;
  SessionTimer timer(io, SessionTimer::Rearm::exact);
  std::vector<int> fired;
  timer.arm(in_ms(5), [&] { fired.push_back(1); });
  timer.arm(in_ms(10), [&] { fired.push_back(2); });  // a new deadline replaces the wait
  REQUIRE(timer.armed().has_value());
  io.run_for(std::chrono::milliseconds(500));
  CHECK(fired == std::vector<int>{2});
  CHECK_FALSE(timer.armed().has_value());  // cleared when it fired
}

TEST_CASE("SessionTimer exact: the same deadline again keeps the pending wait", "[host]") {
  boost::asio::io_context io;
  SessionTimer timer(io, SessionTimer::Rearm::exact);
  std::vector<int> fired;
  const Timestamp t = in_ms(5);
  timer.arm(t, [&] { fired.push_back(1); });
  timer.arm(t, [&] { fired.push_back(2); });
  io.run_for(std::chrono::milliseconds(500));
  CHECK(fired == std::vector<int>{1});
}

TEST_CASE("SessionTimer keep_earlier: a later deadline keeps the earlier wait", "[host]") {
  boost::asio::io_context io;
  SessionTimer timer(io, SessionTimer::Rearm::keep_earlier);
  std::vector<int> fired;
  const Timestamp early = in_ms(300);
  timer.arm(early, [&] { fired.push_back(1); });
  timer.arm(in_ms(600), [&] { fired.push_back(2); });    // later: kept at `early`
  timer.arm(std::nullopt, [&] { fired.push_back(3); });  // none: kept too
  CHECK(timer.armed() == std::optional<Timestamp>(early));
  timer.arm(in_ms(2), [&] { fired.push_back(4); });  // earlier: re-armed
  io.run_for(std::chrono::milliseconds(250));        // returns once the wait at +2 ms ran
  CHECK(fired == std::vector<int>{4});
}

TEST_CASE("SessionTimer: cancel() and destruction never run the handler (H2)", "[host]") {
  boost::asio::io_context io;
  int fired = 0;
  SessionTimer timer(io, SessionTimer::Rearm::exact);
  timer.arm(in_ms(1), [&] { ++fired; });
  timer.cancel();
  CHECK_FALSE(timer.armed().has_value());
  io.run_for(std::chrono::milliseconds(50));
  CHECK(fired == 0);

  // Cancelled, the same deadline is armed again (the policy compares with what is pending).
  const Timestamp t = in_ms(1);
  timer.arm(t, [&] { ++fired; });
  timer.cancel();
  timer.arm(t, [&] { fired += 10; });
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  CHECK(fired == 10);

  auto gone = std::make_unique<SessionTimer>(io, SessionTimer::Rearm::exact);
  gone->arm(in_ms(1), [&] { fired += 100; });
  gone.reset();
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
  CHECK(fired == 10);
}

TEST_CASE("Pump: a nested call asks for another round and runs nothing itself", "[host]") {
  Pump pump;
  int rounds = 0;
  int nested_results = 0;
  bool nested_ran = false;
  const bool outer = pump.run([&] {
    ++rounds;
    if (rounds == 1) {
      CHECK(pump.running());
      nested_ran = pump.run([&] {
        ++nested_results;
        return false;
      });
    }
    return false;
  });
  CHECK(outer);
  CHECK_FALSE(nested_ran);
  CHECK(nested_results == 0);
  CHECK(rounds == 2);  // the nested call's round
  CHECK_FALSE(pump.running());

  // A round that reports more queued work runs again until it reports none.
  int left = 3;
  CHECK(pump.run([&] { return --left > 0; }));
  CHECK(left == 0);
}

namespace {
using mana::host::parse_ws_url;
using mana::host::with_route;
using mana::host::WsUrl;
}  // namespace

TEST_CASE("ws URLs: scheme, host, port, path and Host header") {
  WsUrl u;
  REQUIRE_FALSE(parse_ws_url("ws://127.0.0.1:8022/", u));
  CHECK_FALSE(u.tls);
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == "8022");
  CHECK(u.path == "/");
  CHECK(u.host_header() == "127.0.0.1:8022");

  REQUIRE_FALSE(parse_ws_url("wss://gw.example.com", u));
  CHECK(u.tls);
  CHECK(u.port == "443");
  CHECK(u.path == "/");
  CHECK(u.host_header() == "gw.example.com");

  REQUIRE_FALSE(parse_ws_url("wss://[::1]:9443/ssh?x=1", u));
  CHECK(u.host == "::1");
  CHECK(u.port == "9443");
  CHECK(u.path == "/ssh?x=1");
  CHECK(u.host_header() == "[::1]:9443");

  REQUIRE_FALSE(parse_ws_url("ws://h?q", u));
  CHECK(u.path == "/?q");
  CHECK(u.host_header() == "h");  // default port omitted
}

TEST_CASE("ws URLs: malformed or credential-carrying URLs are refused") {
  WsUrl u;
  for (const char* bad : {"http://h/", "ws://", "ws://:80/", "ws://user:pw@h/", "ws://tok@h/",
                          "ws://h:0/", "ws://h:65536/", "ws://h:8x/", "ws://::1/", "ws://[::1/",
                          "ws://[::1]x/", "ws://h/#frag", "ws://h o/", "wss://h%2f/"}) {
    INFO(bad);
    CHECK(parse_ws_url(bad, u).has_value());
  }
  CHECK(parse_ws_url("ws://a:b@h/", u).value().find("user info") != std::string::npos);
  CHECK(u.host.empty());  // a refused URL leaves the output unchanged
}

TEST_CASE("ws URLs: a resume's request target carries route=<id>, nothing else changes") {
  CHECK(with_route("/", "gw-1") == "/?route=gw-1");
  CHECK(with_route("/ssh?tenant=a", "gw-2") == "/ssh?tenant=a&route=gw-2");
  CHECK(with_route("/ssh?route=old&x=1", "gw-3") == "/ssh?x=1&route=gw-3");
  CHECK(with_route("/ssh?route", "gw-3") == "/ssh?route=gw-3");
  CHECK(with_route("/ssh?&&routes=1&", "gw-4") == "/ssh?routes=1&route=gw-4");
  // Not a route id: unchanged (only [a-z0-9-]{1,32} may reach the URL).
  for (const char* bad :
       {"", "GW", "a&token=x", "gw/1", "gw 1", "gw%20", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}) {
    INFO(bad);
    CHECK(with_route("/ssh?x=1", bad) == "/ssh?x=1");
  }
  WsUrl u;
  REQUIRE_FALSE(parse_ws_url("wss://gw.example.org/ws?tenant=a", u));
  CHECK(with_route(u.path, "127-0-0-1-8022") == "/ws?tenant=a&route=127-0-0-1-8022");
}
