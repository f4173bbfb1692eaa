// Every close code that docs/PROTOCOL.md lists (section "Close codes") is
// exercised here: codes the core sends are produced on the wire by a scenario,
// and every listed code is delivered to a ready client to check that its
// resumable/final handling matches the table's "Resume" column.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "support/session_test_util.hpp"

#ifndef MANA_SOURCE_DIR
#define MANA_SOURCE_DIR "."
#endif

namespace {

using namespace mana::test;  // NOLINT(google-build-using-namespace)
using mana::core::AcceptParams;
using mana::core::Errc;

struct Row {
  int code = 0;
  std::string sent_by;
  bool resumable = false;
};

// Rows of the close-code table: "| 4004 | NAME | condition | sent by | resume |".
std::map<int, Row> protocol_close_codes() {
  std::ifstream in(std::string(MANA_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto start = doc.find("## 11. Close codes");
  const auto end = doc.find("\n## ", start + 4);
  const std::string section = doc.substr(start, end - start);
  std::map<int, Row> rows;
  const std::regex row_re(R"(\n\| (\d{4}) \|[^|]*\|[^|]*\| ([^|]*) \| ([^|\n]*)\|)");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    Row r;
    r.code = std::stoi((*it)[1]);
    r.sent_by = (*it)[2];
    r.resumable = std::string((*it)[3]).find("yes") != std::string::npos;
    rows[r.code] = r;
  }
  return rows;
}

// A server that completed the handshake with a client (returned pair).
struct Pair {
  ClientSession client{test_client_config(), at_ms(0)};
  ServerSession server{test_server_config(), at_ms(0)};
  Pair() {
    (void)client.transport_open(at_ms(0));
    deliver(client, server, at_ms(1));
    (void)server.accept(AcceptParams{std::string(token_a)}, at_ms(1));
    deliver(server, client, at_ms(2));
    drain_events(client);
    drain_events(server);
  }
};

std::optional<int> wire_close(SessionCore& s) {
  auto out = drain_output(s);
  if (out.empty() || !is_close(out.back())) return std::nullopt;
  return static_cast<int>(out.back().close_code);
}

// Scenarios that make the core send `code` on the wire.
std::map<int, std::function<std::optional<int>()>> scenarios() {
  std::map<int, std::function<std::optional<int>()>> m;
  auto host_close = [](CloseCode c) {
    return [c]() -> std::optional<int> {
      Pair p;
      p.server.close(c, "host", at_ms(3));
      return wire_close(p.server);
    };
  };
  auto host_reject = [](Errc e) {
    return [e]() -> std::optional<int> {
      ServerSession s(test_server_config(), at_ms(0));
      feed_text(s, R"({"t":"hello","proto":1})", at_ms(1));
      s.reject(e, "host decision", at_ms(1));
      return wire_close(s);
    };
  };
  auto after_hello = [](std::string_view json) {
    return [text = std::string(json)]() -> std::optional<int> {
      Pair p;
      feed_control(p.server, text, at_ms(3));
      return wire_close(p.server);
    };
  };
  m[1000] = []() -> std::optional<int> {
    Pair p;
    p.client.close(CloseCode::normal, "bye", at_ms(3));
    return wire_close(p.client);
  };
  m[1001] = host_close(CloseCode::going_away);
  m[1008] = host_close(CloseCode::policy_violation);
  m[1011] = host_close(CloseCode::internal_error);
  m[4000] = []() -> std::optional<int> {
    Pair p;
    p.client.close(CloseCode::cancelled, "user cancelled", at_ms(3));
    return wire_close(p.client);
  };
  m[4001] = []() -> std::optional<int> {
    ServerSession s(test_server_config(), at_ms(0));
    feed_text(s, R"({"t":"hello","proto":1,"caps":{"profile":"no.such.v1"}})", at_ms(1));
    return wire_close(s);
  };
  m[4002] = []() -> std::optional<int> {
    ServerSession s(test_server_config(), at_ms(0));
    feed_text(s, R"({"t":"ping","ts":1})", at_ms(1));
    return wire_close(s);
  };
  m[4003] = host_reject(Errc::auth_failed);
  m[4004] = []() -> std::optional<int> {
    Pair p;
    for (std::uint32_t i = 0; i <= test_control_burst; ++i)
      feed_control(p.server, R"({"t":"ping","ts":1})", at_ms(3));
    return wire_close(p.server);
  };
  m[4005] = host_reject(Errc::target_unreachable);
  m[4006] = []() -> std::optional<int> {
    Pair p;
    for (int id = 1; id <= 5; ++id)
      feed_control(
          p.server,
          R"({"t":"open","id":)" + std::to_string(id) + R"(,"target":{"host":"h","port":22}})",
          at_ms(3));
    return wire_close(p.server);
  };
  m[4007] = []() -> std::optional<int> {
    Pair p;
    feed_control(p.server, R"({"t":"open","id":1,"target":{"host":"h","port":22}})", at_ms(3));
    (void)p.server.accept_open(1, std::nullopt, at_ms(3));
    drain_output(p.server);
    feed_data(p.server, Stream::out, 1, std::string(test_window + 1, 'x'), at_ms(4));
    return wire_close(p.server);
  };
  m[4008] = []() -> std::optional<int> {
    Pair p;
    feed_binary(p.server, mana_v1_data(1, 1, std::string(test_max_frame, 'x')), at_ms(3));
    return wire_close(p.server);
  };
  m[4009] = after_hello(R"({"t":"teleport"})");
  m[4010] = host_reject(Errc::server_overload);
  m[4011] = []() -> std::optional<int> {
    ServerSession s(test_server_config(), at_ms(0));
    feed_text(s,
              R"({"t":"hello","proto":1,"resume":{"token":")" + std::string(token_b) +
                  R"(","channels":[]}})",
              at_ms(1));
    s.reject(Errc::resume_rejected, "resume rejected", at_ms(1));
    return wire_close(s);
  };
  m[4012] = []() -> std::optional<int> {
    ServerSession s(test_server_config(), at_ms(0));
    fire_timers(s, at_ms(test_handshake_ms + 1));
    return wire_close(s);
  };
  m[4013] = []() -> std::optional<int> {
    Pair p;
    feed_control(p.server, R"({"t":"open","id":1,"target":{"host":"h","port":22}})", at_ms(3));
    feed_control(p.server, R"({"t":"open","id":1,"target":{"host":"h","port":22}})", at_ms(3));
    return wire_close(p.server);
  };
  m[4014] = []() -> std::optional<int> {
    Pair p;
    feed_binary(p.server, Bytes{1, 0, 0}, at_ms(3));
    return wire_close(p.server);
  };
  m[4015] = host_reject(Errc::internal);
  return m;
}

}  // namespace

TEST_CASE("PROTOCOL.md lists the close codes the core knows", "[close]") {
  const auto rows = protocol_close_codes();
  REQUIRE(rows.size() >= 20);
  for (const auto& [code, row] : rows) {
    INFO("code " << code);
    CHECK(mana::core::is_resumable(static_cast<CloseCode>(code)) == row.resumable);
  }
}

TEST_CASE("every close code the core sends is produced on the wire", "[close]") {
  const auto rows = protocol_close_codes();
  const auto runs = scenarios();
  for (const auto& [code, row] : rows) {
    const bool core_sends =
        row.sent_by.find('C') != std::string::npos || row.sent_by.find('S') != std::string::npos;
    if (!core_sends) continue;
    INFO("code " << code << " (sent by " << row.sent_by << ")");
    auto it = runs.find(code);
    REQUIRE(it != runs.end());
    CHECK(it->second() == std::optional<int>(code));
  }
}

TEST_CASE("every listed close code received by a ready client is handled per the table",
          "[close]") {
  for (const auto& [code, row] : protocol_close_codes()) {
    INFO("code " << code);
    Pair p;
    if (code == 1006) {
      p.client.transport_lost(at_ms(5));
    } else {
      p.client.receive_close(static_cast<std::uint16_t>(code), "peer", at_ms(5));
    }
    const auto events = drain_events(p.client);
    const auto closed = first_event<mana::core::event::Closed>(events);
    REQUIRE(closed.has_value());
    CHECK(static_cast<int>(closed->code) == code);
    CHECK(closed->origin == mana::core::Origin::remote);
    CHECK(closed->resumable == row.resumable);
    CHECK(p.client.state() == (row.resumable ? SessionState::reconnecting : SessionState::closed));
    CHECK_FALSE(p.client.has_output());
  }
}
