// SPDX-License-Identifier: Apache-2.0
// The session state machine (core/include/mana/core/session_state.hpp): the
// allowed-transition table against docs/PROTOCOL.md §6.4, every row driven
// through real sessions, and a change outside the table caught by set_state
// in checked (debug, fuzz) builds.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include "mana/core/session_state.hpp"
#include "support/session_test_util.hpp"

#ifndef MANA_SOURCE_DIR
#define MANA_SOURCE_DIR "."
#endif

namespace mana::test {

// Reaches SessionCore's private state change (a friend of SessionCore).
struct SessionProbe {
  static core::Result<void> change_state(SessionCore& s, SessionState to, Timestamp now) {
    return s.change_state(to, now);
  }
  static void set_state(SessionCore& s, SessionState to, Timestamp now) { s.set_state(to, now); }
};

namespace {

using core::Role;
using Row = std::tuple<Role, SessionState, SessionState>;

constexpr Timestamp t0 = at_ms(1000);

std::string describe(const Row& r) {
  return std::string(core::to_string(std::get<0>(r))) + ": " +
         std::string(core::to_string(std::get<1>(r))) + " -> " +
         std::string(core::to_string(std::get<2>(r)));
}

std::optional<SessionState> state_named(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(SessionState::closed); ++i) {
    const auto s = static_cast<SessionState>(i);
    if (core::to_string(s) == name) return s;
  }
  return std::nullopt;
}

std::set<Row> table_rows() {
  std::set<Row> rows;
  for (const core::StateTransition& t : core::allowed_transitions)
    rows.emplace(t.role, t.from, t.to);
  return rows;
}

// Rows of PROTOCOL.md §6.4: "| client | `connecting` | `authenticating` | when |".
// `unknown` collects rows whose role or state names no SessionState.
std::set<Row> protocol_rows(std::vector<std::string>& unknown) {
  std::ifstream in(std::string(MANA_SOURCE_DIR) + "/docs/PROTOCOL.md");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto start = doc.find("### 6.4 Allowed transitions");
  if (start == std::string::npos) return {};
  const auto end = doc.find("\n## ", start);
  const std::string section = doc.substr(start, end - start);
  std::set<Row> rows;
  const std::regex row_re(R"(\n\| ([a-z]+) \| `([a-z_]+)` \| `([a-z_]+)` \|)");
  for (auto it = std::sregex_iterator(section.begin(), section.end(), row_re);
       it != std::sregex_iterator(); ++it) {
    const std::string role = (*it)[1];
    const auto from = state_named(std::string((*it)[2]));
    const auto to = state_named(std::string((*it)[3]));
    if ((role != "client" && role != "server") || !from || !to) {
      unknown.push_back((*it)[0]);
      continue;
    }
    rows.emplace(role == "server" ? Role::server : Role::client, *from, *to);
  }
  return rows;
}

// Every StateChanged a session reported, as rows of its role.
void record(std::set<Row>& seen, Role role, const std::vector<Event>& events) {
  for (const auto& sc : events_of<core::event::StateChanged>(events))
    seen.emplace(role, sc.from, sc.to);
}

void record(std::set<Row>& seen, SessionCore& s) {
  record(seen, s.role(), drain_events(s));
}

// Handshake, loss on both sides, resume onto the old server session through a
// fresh one (which the host then closes), final close of both.
void lifecycle_with_resume(std::set<Row>& seen) {
  SessionPair p;
  REQUIRE(p.handshake(t0, token_a));
  const Timestamp t1 = plus_ms(t0, 10);
  drain_output(p.client);
  drain_output(p.server);
  p.client.transport_lost(t1);
  p.server.transport_lost(t1);
  REQUIRE(p.client.state() == SessionState::reconnecting);
  REQUIRE(p.server.state() == SessionState::detached);
  const Timestamp t2 = plus_ms(t1, 10);
  REQUIRE(p.client.transport_open(t2));
  ServerSession fresh(test_server_config(), t2);
  deliver(p.client, fresh, t2);
  const auto req = first_event<core::event::ResumeRequested>(drain_events(fresh));
  REQUIRE(req);
  REQUIRE(p.server.resume(req->hello, std::string(token_b), t2));
  fresh.close(CloseCode::normal, "moved to the resumed session", t2);
  record(seen, fresh);
  p.pump(t2);
  REQUIRE(p.client.state() == SessionState::ready);
  REQUIRE(p.server.state() == SessionState::ready);
  p.client.close(CloseCode::normal, "bye", t2);
  p.server.close(CloseCode::normal, "bye", t2);
  p.collect();
  record(seen, Role::client, p.client_log);
  record(seen, Role::server, p.server_log);
}

// A resume attempt loses its transport, then the application gives up.
void client_resume_lost_then_closed(std::set<Row>& seen) {
  SessionPair p;
  REQUIRE(p.handshake(t0, token_a));
  drain_output(p.client);
  p.client.transport_lost(plus_ms(t0, 10));
  REQUIRE(p.client.transport_open(plus_ms(t0, 20)));
  REQUIRE(p.client.state() == SessionState::authenticating);
  p.client.transport_lost(plus_ms(t0, 30));
  REQUIRE(p.client.state() == SessionState::reconnecting);
  p.client.close(CloseCode::normal, "retries exhausted", plus_ms(t0, 40));
  p.collect();
  record(seen, Role::client, p.client_log);
}

void client_closed_before_transport(std::set<Row>& seen) {
  ClientSession c(test_client_config(), t0);
  c.close(CloseCode::normal, "not needed", t0);
  REQUIRE(c.state() == SessionState::closed);
  record(seen, c);
}

void client_handshake_timeout(std::set<Row>& seen) {
  ClientSession c(test_client_config(), t0);
  REQUIRE(c.transport_open(t0));
  fire_timers(c, plus_ms(t0, test_handshake_ms));
  REQUIRE(c.state() == SessionState::closed);
  record(seen, c);
}

void server_handshake_timeout(std::set<Row>& seen) {
  ServerSession s(test_server_config(), t0);
  fire_timers(s, plus_ms(t0, test_handshake_ms));
  REQUIRE(s.state() == SessionState::closed);
  record(seen, s);
}

void server_resume_ttl_expired(std::set<Row>& seen) {
  SessionPair p;
  REQUIRE(p.handshake(t0, token_a));
  drain_output(p.server);
  p.server.transport_lost(plus_ms(t0, 10));
  REQUIRE(p.server.state() == SessionState::detached);
  fire_timers(p.server, plus_ms(t0, 10 + test_resume_ttl_ms));
  REQUIRE(p.server.state() == SessionState::closed);
  p.collect();
  record(seen, Role::server, p.server_log);
}

}  // namespace

TEST_CASE("PROTOCOL.md 6.4 lists exactly the allowed transitions of the core", "[state]") {
  std::vector<std::string> unknown;
  const std::set<Row> doc = protocol_rows(unknown);
  const std::set<Row> table = table_rows();
  CHECK(unknown.empty());
  REQUIRE(doc.size() >= 10);
  CHECK(table.size() == core::allowed_transitions.size());  // no row twice (T1)
  for (const Row& r : table) {
    INFO(describe(r));
    CHECK(doc.count(r) == 1);
  }
  for (const Row& r : doc) {
    INFO(describe(r));
    CHECK(table.count(r) == 1);
  }
}

TEST_CASE("every allowed transition happens in a real session, and nothing else", "[state]") {
  std::set<Row> seen;
  lifecycle_with_resume(seen);
  client_resume_lost_then_closed(seen);
  client_closed_before_transport(seen);
  client_handshake_timeout(seen);
  server_handshake_timeout(seen);
  server_resume_ttl_expired(seen);
  for (const core::StateTransition& t : core::allowed_transitions) {
    const Row r{t.role, t.from, t.to};
    INFO(describe(r));
    CHECK(seen.count(r) == 1);
  }
  for (const Row& r : seen) {
    INFO(describe(r));
    CHECK(core::is_allowed_transition(std::get<0>(r), std::get<1>(r), std::get<2>(r)));
  }
}

TEST_CASE("check_transition: rows, the same state and changes outside the table", "[state]") {
  for (const core::StateTransition& t : core::allowed_transitions)
    CHECK(core::check_transition(t.role, t.from, t.to));
  CHECK(core::check_transition(Role::client, SessionState::closed, SessionState::closed));
  CHECK(core::initial_state(Role::client) == SessionState::connecting);
  CHECK(core::initial_state(Role::server) == SessionState::awaiting_hello);

  const auto r = core::check_transition(Role::client, SessionState::closed, SessionState::ready);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == core::Errc::internal);
  CHECK(r.error().origin == core::Origin::local);
  CHECK(r.error().detail ==
        "client: closed -> ready is not an allowed transition (docs/PROTOCOL.md 6.4)");
  // A state of the other role.
  CHECK_FALSE(core::check_transition(Role::client, SessionState::ready, SessionState::detached));
  CHECK_FALSE(
      core::check_transition(Role::server, SessionState::ready, SessionState::reconnecting));
}

TEST_CASE("a change outside the table is caught by the checked state hook", "[state]") {
  ClientSession c(test_client_config(), t0);
  c.close(CloseCode::normal, "bye", t0);
  drain_events(c);
  const auto r = SessionProbe::change_state(c, SessionState::ready, t0);
  if (core::transitions_checked()) {
    REQUIRE_FALSE(r);
    CHECK(r.error().detail.find("client: closed -> ready") != std::string::npos);
    CHECK(c.state() == SessionState::closed);
    CHECK_FALSE(c.has_event());  // no StateChanged for a refused change
  } else {
    // Release builds do not check (T3): the change is made as before.
    CHECK(r);
    CHECK(c.state() == SessionState::ready);
  }
  // An allowed change goes through the same hook in every build.
  ServerSession s(test_server_config(), t0);
  CHECK(SessionProbe::change_state(s, SessionState::closed, t0));
  CHECK(s.state() == SessionState::closed);
}

TEST_CASE("set_state aborts with the offending row in checked builds", "[state]") {
  if (!core::transitions_checked()) {
    ClientSession c(test_client_config(), t0);
    c.close(CloseCode::normal, "bye", t0);
    SessionProbe::set_state(c, SessionState::ready, t0);
    CHECK(c.state() == SessionState::ready);  // unchecked: release behaviour unchanged
    return;
  }
  int fds[2] = {-1, -1};
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Child: stderr into the pipe, default SIGABRT (not Catch's reporter).
    ::close(fds[0]);
    ::dup2(fds[1], STDERR_FILENO);
    std::signal(SIGABRT, SIG_DFL);
    ClientSession c(test_client_config(), t0);
    c.close(CloseCode::normal, "bye", t0);
    SessionProbe::set_state(c, SessionState::ready, t0);
    ::_exit(0);  // reached only if the violation went unnoticed
  }
  ::close(fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n = 0; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO("child stderr: " << err);
  CHECK(WIFSIGNALED(status));
  CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT));
  CHECK(err.find("mana::core: library bug: client: closed -> ready is not an allowed transition") !=
        std::string::npos);
}

}  // namespace mana::test
