// Authentication of hello.auth: HS256 JWTs verified with libjwt, or scheme "none" when allowed.
//
// Claims: `sub` (non-empty string, required) is the principal; `exp` (integer, required) must be
// in the future; `nbf` (integer, optional) must be in the past; `targets` (optional array of
// "host:port" strings) restricts which targets the principal may open. Clock skew is tolerated
// up to Config::clock_skew_s. The token itself is never logged or stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "mana/core/messages.hpp"

namespace mana::gateway {

struct AuthResult {
  bool ok = false;
  std::string principal;  // JWT sub, or "anonymous" for scheme none
  // Present when the token restricts targets: normalised "host:port" entries (lower-case host,
  // no trailing dot, IPv6 in brackets).
  std::optional<std::vector<std::string>> targets;
  std::string why;  // failure reason for the log (never contains the token)
};

class Authenticator {
 public:
  // Reads the secret file (throws std::runtime_error if configured but unreadable or < 32 bytes).
  explicit Authenticator(const Config& cfg);
  [[nodiscard]] AuthResult check(const std::optional<core::Auth>& auth,
                                 std::int64_t now_unix) const;
  [[nodiscard]] bool jwt_enabled() const noexcept { return !secret_.empty(); }

 private:
  std::string secret_;
  bool allow_none_ = false;
  std::int64_t skew_ = 30;
};

// Normalises a "host:port" target string as used in the `targets` claim and for comparison.
std::string normalise_target(std::string_view host, std::uint16_t port);

}  // namespace mana::gateway
