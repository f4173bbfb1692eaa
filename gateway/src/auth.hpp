// Authentication of hello.auth: JWTs (HS256 with the shared secret, verified by libjwt; RS256,
// ES256 and EdDSA with public keys from a JWKS, verified by OpenSSL 3 in jwk.cpp), or scheme
// "none" when allowed.
//
// Key selection: a token with a `kid` is checked against that JWKS key only, and the key's type
// fixes the algorithm (an RSA key verifies RS256 and nothing else; the header `alg` must say
// so). A token without `kid` must be HS256 and is checked against the secret. Anything else
// (`alg: none`, an unknown kid, another algorithm) is refused before any signature check.
//
// Claims: `sub` (non-empty string, required) is the principal; `exp` (integer, required) must be
// in the future; `nbf` (integer, optional) must be in the past; `iss` / `aud` must match
// Config::issuer / Config::audience when those are set; `targets` (optional array of
// "host:port" strings) restricts which targets the principal may open. Clock skew is tolerated
// up to Config::clock_skew_s. The token itself is never logged or stored.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "jwk.hpp"
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
  // Reads the secret file (throws std::runtime_error if configured but unreadable, < 32 bytes or
  // a PEM key) and the JWKS file (throws as JwkSet::load does).
  explicit Authenticator(const Config& cfg);
  [[nodiscard]] AuthResult check(const std::optional<core::Auth>& auth,
                                 std::int64_t now_unix) const;
  [[nodiscard]] bool jwt_enabled() const noexcept { return !secret_.empty() || key_count() > 0; }
  [[nodiscard]] std::size_t key_count() const noexcept;
  // Swaps in a new JWKS key set (nullptr: none). Atomic: a check in progress keeps the set it
  // started with, the next check sees the new one.
  void replace_keys(std::shared_ptr<const JwkSet> keys) noexcept;
  // SIGHUP (Server::reload): takes over everything `next` read (secret, keys, iss/aud, allow_none,
  // skew). `next` was built from the new config first, so a bad file never gets this far.
  void take_from(Authenticator& next) noexcept;

 private:
  // Verifies the signature with the key the header selects and returns the claims object, or
  // sets r.why and returns nullopt.
  std::optional<nlohmann::json> verified_claims(const std::string& token, AuthResult& r) const;
  void check_claims(const nlohmann::json& claims, std::int64_t now_unix, AuthResult& r) const;

  std::string secret_;
  std::atomic<std::shared_ptr<const JwkSet>> keys_;
  std::string issuer_;
  std::string audience_;
  bool allow_none_ = false;
  std::int64_t skew_ = 30;
};

// Normalises a "host:port" target string as used in the `targets` claim and for comparison.
std::string normalise_target(std::string_view host, std::uint16_t port);

}  // namespace mana::gateway
