// SPDX-License-Identifier: Apache-2.0
// The session state machine as data: which SessionState may follow which, per
// role. docs/PROTOCOL.md §6.2 and §6.3 draw it, §6.4 lists the same rows as
// `allowed_transitions` below; tests/unit/session_state_test.cpp fails when the
// two disagree, and drives every row through a real session.
//
// Rules
//   Rule 1  A client starts in `connecting`, a server in `awaiting_hello`.
//   Rule 2  Only the rows of `allowed_transitions` change the state. Setting
//           the current state again is no transition (set_state ignores it).
//   Rule 3  `closed` is final: no row leaves it. Every other state may go to
//           `closed` (close() by the host, a fatal error, a final close code).
//   Rule 4  `connecting` and `reconnecting` are client states, `awaiting_hello`
//           and `detached` server states; `authenticating`, `ready` and
//           `closed` belong to both.
//
// Invariants
//   T1  The table holds no row twice and no row from `closed` (static_assert).
//   T2  Every row's states belong to its role (Rule 4, static_assert).
//   T3  In debug and fuzz builds (transitions_checked()) a state change
//       outside the table is a library bug: SessionCore::set_state writes the
//       offending row to stderr and aborts. Release builds do not check.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "mana/core/events.hpp"
#include "mana/core/result.hpp"

namespace mana::core {

enum class Role : std::uint8_t { client, server };

std::string_view to_string(Role r) noexcept;  // "client" | "server"

struct StateTransition {
  Role role;
  SessionState from;
  SessionState to;
};

// One row per allowed change of state (PROTOCOL.md §6.4, same order).
inline constexpr std::array allowed_transitions{
    // client (ClientSession)
    StateTransition{Role::client, SessionState::connecting, SessionState::authenticating},
    StateTransition{Role::client, SessionState::connecting, SessionState::closed},
    StateTransition{Role::client, SessionState::authenticating, SessionState::ready},
    StateTransition{Role::client, SessionState::authenticating, SessionState::reconnecting},
    StateTransition{Role::client, SessionState::authenticating, SessionState::closed},
    StateTransition{Role::client, SessionState::ready, SessionState::reconnecting},
    StateTransition{Role::client, SessionState::ready, SessionState::closed},
    StateTransition{Role::client, SessionState::reconnecting, SessionState::authenticating},
    StateTransition{Role::client, SessionState::reconnecting, SessionState::closed},
    // server (ServerSession)
    StateTransition{Role::server, SessionState::awaiting_hello, SessionState::authenticating},
    StateTransition{Role::server, SessionState::awaiting_hello, SessionState::closed},
    StateTransition{Role::server, SessionState::authenticating, SessionState::ready},
    StateTransition{Role::server, SessionState::authenticating, SessionState::closed},
    StateTransition{Role::server, SessionState::ready, SessionState::detached},
    StateTransition{Role::server, SessionState::ready, SessionState::closed},
    StateTransition{Role::server, SessionState::detached, SessionState::ready},
    StateTransition{Role::server, SessionState::detached, SessionState::closed},
};

// The state a session of `role` starts in (Rule 1).
constexpr SessionState initial_state(Role role) noexcept {
  return role == Role::server ? SessionState::awaiting_hello : SessionState::connecting;
}

// True when a session of `role` can be in `s` (Rule 4).
constexpr bool state_of_role(Role role, SessionState s) noexcept {
  switch (s) {
    case SessionState::connecting:
    case SessionState::reconnecting:
      return role == Role::client;
    case SessionState::awaiting_hello:
    case SessionState::detached:
      return role == Role::server;
    case SessionState::authenticating:
    case SessionState::ready:
    case SessionState::closed:
      return true;
  }
  return false;
}

// True when `allowed_transitions` holds the row (role, from, to).
constexpr bool is_allowed_transition(Role role, SessionState from, SessionState to) noexcept {
  for (const StateTransition& t : allowed_transitions)
    if (t.role == role && t.from == from && t.to == to) return true;
  return false;
}

namespace detail {

constexpr bool transitions_well_formed() noexcept {
  for (std::size_t i = 0; i < allowed_transitions.size(); ++i) {
    const StateTransition& a = allowed_transitions[i];
    if (a.from == SessionState::closed || a.from == a.to) return false;
    if (!state_of_role(a.role, a.from) || !state_of_role(a.role, a.to)) return false;
    for (std::size_t j = i + 1; j < allowed_transitions.size(); ++j) {
      const StateTransition& b = allowed_transitions[j];
      if (a.role == b.role && a.from == b.from && a.to == b.to) return false;
    }
  }
  return true;
}

}  // namespace detail

static_assert(detail::transitions_well_formed(),
              "allowed_transitions: T1/T2 (a duplicate row, a row from closed, a row to itself "
              "or a state of the other role)");

// Ok when the table allows the change. Otherwise Errc::internal (local) with a
// detail that names the role and both states ("client: closed -> ready is not
// an allowed transition (docs/PROTOCOL.md 6.4)"). A change to the same state is
// no transition and always ok (Rule 2).
Result<void> check_transition(Role role, SessionState from, SessionState to);

// True in the builds that check every state change (debug and fuzz builds, T3).
bool transitions_checked() noexcept;

// Writes `e.detail` to stderr and aborts. SessionCore::set_state calls it for a
// transition outside the table in checked builds (T3).
[[noreturn]] void transition_violation(const Error& e) noexcept;

}  // namespace mana::core
