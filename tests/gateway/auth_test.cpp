// JWT authentication (HS256 via libjwt in auth.cpp). Tokens are built here with OpenSSL HMAC so
// the tests can also forge what a careless library would accept (alg none, other algs, tampering).
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "policy.hpp"
#include "jwt_test_util.hpp"
#include "test_util.hpp"

using mana::gateway::Authenticator;
using mana::gateway::AuthResult;
using mana::gateway::Config;
using mana::gateway::Policy;
using mana::gateway::test::b64url;
using mana::gateway::test::bearer;
using mana::gateway::test::config_from;
using mana::gateway::test::hmac;
using mana::gateway::test::TempDir;
using nlohmann::json;

namespace {

constexpr std::int64_t now_s = 1'700'000'000;
const std::string test_key = "0123456789abcdef0123456789abcdef-test-key";  // 41 bytes
const std::string other_key = "fedcba9876543210fedcba9876543210-other-key";

// header.payload.signature; `alg` goes into the header, `md` signs (nullptr: empty signature).
std::string make_token(const json& claims, const std::string& key = test_key,
                       const std::string& alg = "HS256", const EVP_MD* md = EVP_sha256()) {
  const json header = {{"alg", alg}, {"typ", "JWT"}};
  const std::string signing = b64url(header.dump()) + "." + b64url(claims.dump());
  const std::string sig = md != nullptr ? b64url(hmac(md, key, signing)) : std::string();
  return signing + "." + sig;
}

json valid_claims() {
  return {{"sub", "alice"}, {"exp", now_s + 300}, {"iat", now_s}};
}

// An authenticator with test_key as its HS256 secret (file in a temp dir, trailing newline).
struct Fixture {
  TempDir dir;
  Config cfg;
  std::optional<Authenticator> auth;
  explicit Fixture(bool allow_none = false) {
    cfg.jwt_secret_file = dir.write("jwt-secret", test_key + "\n");
    cfg.allow_none = allow_none;
    auth.emplace(cfg);
  }
  AuthResult check(const std::string& token, std::int64_t now = now_s) const {
    return auth->check(bearer(token), now);
  }
};

}  // namespace

TEST_CASE("auth: a valid HS256 token is accepted with its sub", "[gateway][auth]") {
  const Fixture f;
  REQUIRE(f.auth->jwt_enabled());
  const AuthResult r = f.check(make_token(valid_claims()));
  INFO(r.why);
  CHECK(r.ok);
  CHECK(r.principal == "alice");
  CHECK_FALSE(r.targets.has_value());

  json c = valid_claims();
  c["nbf"] = now_s - 10;
  c["sub"] = "bob@example.com";
  const AuthResult r2 = f.check(make_token(c));
  CHECK(r2.ok);
  CHECK(r2.principal == "bob@example.com");
}

TEST_CASE("auth: expired tokens are rejected (clock skew tolerated)", "[gateway][auth]") {
  const Fixture f;  // clock_skew_s = 30
  json c = valid_claims();
  c["exp"] = now_s - 100;
  const AuthResult r = f.check(make_token(c));
  CHECK_FALSE(r.ok);
  CHECK(r.why == "jwt expired");
  CHECK(r.principal.empty());
  c["exp"] = now_s - 30;  // exp + skew <= now
  CHECK_FALSE(f.check(make_token(c)).ok);
  c["exp"] = now_s - 10;  // within the skew
  CHECK(f.check(make_token(c)).ok);
  // The same valid token stops working once time passes its exp.
  const std::string token = make_token(valid_claims());
  CHECK(f.check(token, now_s).ok);
  CHECK_FALSE(f.check(token, now_s + 300 + 30).ok);
}

TEST_CASE("auth: tokens whose nbf is in the future are rejected", "[gateway][auth]") {
  const Fixture f;
  json c = valid_claims();
  c["nbf"] = now_s + 120;
  const AuthResult r = f.check(make_token(c));
  CHECK_FALSE(r.ok);
  CHECK(r.why == "jwt not yet valid");
  c["nbf"] = now_s + 10;  // within the skew
  CHECK(f.check(make_token(c)).ok);
  c["nbf"] = "soon";
  CHECK_FALSE(f.check(make_token(c)).ok);
}

TEST_CASE("auth: wrong signatures and tampered tokens are rejected", "[gateway][auth]") {
  const Fixture f;
  CHECK_FALSE(f.check(make_token(valid_claims(), other_key)).ok);
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key.substr(0, 32))).ok);

  // Payload swapped after signing (sub changed to "admin").
  const std::string good = make_token(valid_claims());
  json evil = valid_claims();
  evil["sub"] = "admin";
  const std::string forged_payload = b64url(evil.dump());
  const auto d1 = good.find('.');
  const auto d2 = good.find('.', d1 + 1);
  const std::string tampered = good.substr(0, d1 + 1) + forged_payload + good.substr(d2);
  CHECK_FALSE(f.check(tampered).ok);

  // Signature stripped, truncated or flipped.
  CHECK_FALSE(f.check(good.substr(0, d2 + 1)).ok);
  CHECK_FALSE(f.check(good.substr(0, good.size() - 2)).ok);
  std::string flipped = good;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  CHECK_FALSE(f.check(flipped).ok);

  for (const char* junk : {"", "x", "a.b", "a.b.c", "...", "eyJhbGciOiJIUzI1NiJ9..."})
    CHECK_FALSE(f.check(junk).ok);
}

TEST_CASE("auth: alg none and other algorithms are rejected", "[gateway][auth]") {
  const Fixture f;
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "none", nullptr)).ok);
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "None", nullptr)).ok);
  // "none" header with a valid HS256 signature attached: still not HS256.
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "none", EVP_sha256())).ok);
  // Correctly signed HS384/HS512 with the same key: only HS256 is accepted.
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "HS384", EVP_sha384())).ok);
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "HS512", EVP_sha512())).ok);
  // An RS256 header over an HMAC signature (key-confusion attempt).
  CHECK_FALSE(f.check(make_token(valid_claims(), test_key, "RS256", EVP_sha256())).ok);
}

TEST_CASE("auth: sub and exp are required", "[gateway][auth]") {
  const Fixture f;
  json c = valid_claims();
  c.erase("sub");
  AuthResult r = f.check(make_token(c));
  CHECK_FALSE(r.ok);
  CHECK(r.why == "jwt sub missing or invalid");
  for (const json& bad :
       {json(""), json(42), json(nullptr), json::array({"alice"}), json(std::string(257, 'a'))}) {
    c["sub"] = bad;
    CHECK_FALSE(f.check(make_token(c)).ok);
  }
  json e = valid_claims();
  e.erase("exp");
  r = f.check(make_token(e));
  CHECK_FALSE(r.ok);
  CHECK(r.why == "jwt exp missing or invalid");
  e["exp"] = "tomorrow";
  CHECK_FALSE(f.check(make_token(e)).ok);
  e["exp"] = static_cast<double>(now_s + 300) + 0.5;
  CHECK_FALSE(f.check(make_token(e)).ok);
}

TEST_CASE("auth: the targets claim is parsed, normalised and enforced", "[gateway][auth]") {
  const Fixture f;
  json c = valid_claims();
  c["targets"] = {"SSH.Example.com.:22", "[::1]:2222", "10.1.2.3:22"};
  const AuthResult r = f.check(make_token(c));
  INFO(r.why);
  REQUIRE(r.ok);
  REQUIRE(r.targets.has_value());
  CHECK(*r.targets == std::vector<std::string>{"ssh.example.com:22", "[::1]:2222", "10.1.2.3:22"});

  // Enforced by the policy even though the config allows more.
  const Policy p(config_from(R"([[targets]]
host = "ssh.example.com"
ports = [22]

[[targets]]
host = "127.0.0.1"
ports = [2222]

[[targets]]
cidr = "10.0.0.0/8"
ports = [22]
)"));
  std::string name;
  CHECK(p.precheck("ssh.example.com", 22, r.targets, name).allowed);
  CHECK(p.precheck("10.1.2.3", 22, r.targets, name).allowed);
  CHECK(p.precheck("127.0.0.1", 2222, r.targets, name).reason == "token_target");
  CHECK(p.precheck("10.1.2.4", 22, r.targets, name).reason == "token_target");
  CHECK(p.precheck("ssh.example.com", 2222, r.targets, name).reason == "token_target");
  // Without the claim the same opens pass precheck.
  CHECK(p.precheck("127.0.0.1", 2222, std::nullopt, name).allowed);

  // An empty list restricts to nothing; malformed claims reject the token.
  c["targets"] = json::array();
  const AuthResult empty = f.check(make_token(c));
  REQUIRE(empty.ok);
  REQUIRE(empty.targets.has_value());
  CHECK(empty.targets->empty());
  CHECK(p.precheck("ssh.example.com", 22, empty.targets, name).reason == "token_target");
  for (const json& bad :
       {json("ssh.example.com:22"), json::array({"ssh.example.com"}),
        json::array({"ssh.example.com:0"}), json::array({22}), json::array({"::1:22"})}) {
    c["targets"] = bad;
    CHECK_FALSE(f.check(make_token(c)).ok);
  }
}

TEST_CASE("auth: scheme none only when allowed", "[gateway][auth]") {
  const Fixture strict;
  mana::core::Auth none;
  CHECK_FALSE(strict.auth->check(none, now_s).ok);
  CHECK_FALSE(strict.auth->check(std::nullopt, now_s).ok);
  const Fixture open(true);
  const AuthResult r = open.auth->check(none, now_s);
  CHECK(r.ok);
  CHECK(r.principal == "anonymous");
  CHECK(open.auth->check(std::nullopt, now_s).ok);
  // allow_none does not weaken bearer checks.
  CHECK_FALSE(open.check(make_token(valid_claims(), other_key)).ok);
}

TEST_CASE("auth: the secret file must exist and hold at least 32 bytes", "[gateway][auth]") {
  TempDir dir;
  Config c;
  c.jwt_secret_file = (dir.path() / "missing").string();
  CHECK_THROWS_WITH(Authenticator(c), Catch::Contains("cannot read"));
  c.jwt_secret_file = dir.write("short", std::string(31, 'k') + "\n");
  CHECK_THROWS_WITH(Authenticator(c), Catch::Contains("at least 32 bytes"));
  c.jwt_secret_file = dir.write("ok", std::string(32, 'k'));
  CHECK_NOTHROW(Authenticator(c));
}
