// SPDX-License-Identifier: Apache-2.0
#include "mana/core/session_state.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace mana::core {

std::string_view to_string(Role r) noexcept {
  return r == Role::server ? "server" : "client";
}

Result<void> check_transition(Role role, SessionState from, SessionState to) {
  if (from == to || is_allowed_transition(role, from, to)) return {};
  std::string detail(to_string(role));
  detail += ": ";
  detail += to_string(from);
  detail += " -> ";
  detail += to_string(to);
  detail += " is not an allowed transition (docs/PROTOCOL.md 6.4)";
  return make_error(Errc::internal, Origin::local, std::move(detail));
}

bool transitions_checked() noexcept {
  // core/CMakeLists.txt defines MANA_CHECK_TRANSITIONS in Debug and fuzz builds.
#ifdef MANA_CHECK_TRANSITIONS
  return true;
#else
  return false;
#endif
}

void transition_violation(const Error& e) noexcept {
  std::fprintf(stderr, "mana::core: library bug: %s\n", e.detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace mana::core
