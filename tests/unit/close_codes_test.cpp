// SPDX-License-Identifier: Apache-2.0
// Every close code that docs/PROTOCOL.md lists (section "Close codes") is
// exercised here: codes the core sends are produced on the wire by a scenario,
// and every listed code is delivered to a ready client to check that its
// resumable/final handling matches the table's "Resume" column. The section's
// error-group and Errc tables are checked against the core's to_close_code(),
// group_of() and error conditions; js-glue/test/errc-table.test.mjs checks the
// same tables against the JS error classes.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <system_error>

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

// Section 11 of docs/PROTOCOL.md.
std::string close_codes_section() {
  std::ifstream in(std::string(MANA_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto start = doc.find("## 11. Close codes");
  const auto end = doc.find("\n## ", start + 4);
  return start == std::string::npos ? std::string() : doc.substr(start, end - start);
}

// Rows of the close-code table: "| 4004 | NAME | condition | sent by | resume |".
std::map<int, Row> protocol_close_codes() {
  const std::string section = close_codes_section();
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

// Rows of the error-group table: "| `group` | `condition` | JS class | what to do |"
// (condition "—": none). Group name -> condition name ("" for none).
std::map<std::string, std::string> protocol_error_groups() {
  const std::string section = close_codes_section();
  std::map<std::string, std::string> groups;
  const std::regex row_re(R"(\n\| `(\w+)` \| (?:`(\w+)`|—) \|)");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    groups[(*it)[1]] = (*it)[2];
  }
  return groups;
}

struct ErrcDocRow {
  int code = 0;
  std::string group;
};

// Rows of the Errc table: "| `a`, `b` | 4014 | `group` |", one entry per Errc name.
std::map<std::string, ErrcDocRow> protocol_errc_rows() {
  const std::string section = close_codes_section();
  std::map<std::string, ErrcDocRow> rows;
  const std::regex row_re(R"(\n\| ((?:`\w+`(?:, )?)+) \| (\d{4}) \| `(\w+)` \|)");
  const std::regex name_re(R"(`(\w+)`)");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    const std::string names = (*it)[1];
    for (auto n = std::sregex_iterator(names.begin(), names.end(), name_re);
         n != std::sregex_iterator(); ++n) {
      const std::string name = (*n)[1];
      INFO("Errc " << name << " is listed twice");
      CHECK(rows.count(name) == 0);
      rows[name] = ErrcDocRow{std::stoi((*it)[2]), (*it)[3]};
    }
  }
  return rows;
}

// ErrcCondition by name, from the core's own table.
const std::map<std::string, mana::core::ErrcCondition>& conditions_by_name() {
  static const std::map<std::string, mana::core::ErrcCondition> m = {
#define MANA_ERRC_CONDITION(name, value, message) {#name, mana::core::ErrcCondition::name},
#include "mana/core/errc.def"
  };
  return m;
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

TEST_CASE("PROTOCOL.md maps every Errc to the core's close code, group and condition", "[close]") {
  using mana::core::ErrcGroup;
  const auto groups = protocol_error_groups();
  const auto rows = protocol_errc_rows();
  REQUIRE(groups.size() >= 8);

  std::set<std::string> core_groups;
  for (int g = 0; mana::core::to_string(static_cast<ErrcGroup>(g)) != "unknown"; ++g)
    core_groups.insert(std::string(mana::core::to_string(static_cast<ErrcGroup>(g))));
  std::set<std::string> doc_groups;
  for (const auto& group : groups)
    doc_groups.insert(group.first);
  CHECK(doc_groups == core_groups);

  const auto errc_count = static_cast<int>(Errc::internal) + 1;
  CHECK(rows.size() == static_cast<std::size_t>(errc_count));
  for (int i = 0; i < errc_count; ++i) {
    const auto e = static_cast<Errc>(i);
    const std::string name(mana::core::to_string(e));
    INFO("Errc " << name);
    const auto row = rows.find(name);
    REQUIRE(row != rows.end());
    CHECK(static_cast<int>(mana::core::to_close_code(e)) == row->second.code);
    CHECK(mana::core::to_string(mana::core::group_of(e)) == row->second.group);
    const auto group = groups.find(row->second.group);
    REQUIRE(group != groups.end());
    const std::error_code ec = e;
    for (const auto& [cond_name, cond] : conditions_by_name()) {
      INFO("condition " << cond_name);
      CHECK((ec == cond) == (cond_name == group->second));
    }
    if (group->second.empty()) CHECK(ec.default_error_condition().category() == ec.category());
  }
}
