// JWT verification with asymmetric keys from a JWKS (jwk.cpp, jws.cpp, auth.cpp): each
// algorithm with its key, key selection and rotation by kid, every algorithm-confusion case,
// iss/aud, and the time claims on this path. Keys are generated per run with OpenSSL.
#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "jwk.hpp"
#include "jwt_test_util.hpp"
#include "test_keys.hpp"
#include "test_util.hpp"

using mana::gateway::Authenticator;
using mana::gateway::AuthResult;
using mana::gateway::Config;
using mana::gateway::JwkSet;
using namespace mana::gateway::test;  // keys, tokens, TempDir, refused (jwt_test_util.hpp)
using nlohmann::json;

namespace {

constexpr std::int64_t now_s = 1'700'000'000;
const std::string hs_key = "0123456789abcdef0123456789abcdef-jwks-test";

json claims() {
  return {{"sub", "alice"}, {"exp", now_s + 300}, {"iat", now_s}};
}

// A token with header {"alg": alg, "kid": kid} (kid omitted when empty) signed by `key`.
std::string signed_by(const TestKey& key, const std::string& alg, const std::string& kid,
                      const json& c = claims()) {
  json h = {{"alg", alg}, {"typ", "JWT"}};
  if (!kid.empty()) h["kid"] = kid;
  return jws_token(h, c, [&](const std::string& in) { return key.sign(in); });
}

std::string hs256(const std::string& secret, const std::string& kid, const json& c = claims()) {
  json h = {{"alg", "HS256"}, {"typ", "JWT"}};
  if (!kid.empty()) h["kid"] = kid;
  return jws_token(h, c, [&](const std::string& in) { return hmac(EVP_sha256(), secret, in); });
}

// The three keys under kids "rsa-1", "ec-1", "ed-1"; optionally the HS256 secret too.
struct Fixture {
  TempDir dir;
  Config cfg;
  std::optional<Authenticator> auth;
  explicit Fixture(bool with_secret = false, const std::string& issuer = "",
                   const std::string& audience = "") {
    cfg.jwks_file =
        dir.write("jwks.json", jwks_text({rsa().jwk("rsa-1"), ec().jwk("ec-1"), ed().jwk("ed-1")}));
    if (with_secret) cfg.jwt_secret_file = dir.write("jwt-secret", hs_key + "\n");
    cfg.issuer = issuer;
    cfg.audience = audience;
    auth.emplace(cfg);
  }
  [[nodiscard]] AuthResult check(const std::string& token, std::int64_t now = now_s) const {
    return auth->check(bearer(token), now);
  }
};

}  // namespace

TEST_CASE("jwks: RS256, ES256 and EdDSA tokens verify with their own keys", "[gateway][jwks]") {
  const Fixture f;
  REQUIRE(f.auth->jwt_enabled());
  REQUIRE(f.auth->key_count() == 3);
  for (const auto& [key, kid] : {std::pair{&rsa(), "rsa-1"}, {&ec(), "ec-1"}, {&ed(), "ed-1"}}) {
    json c = claims();
    c["targets"] = {"127.0.0.1:22"};
    const AuthResult r = f.check(signed_by(*key, key->alg(), kid, c));
    INFO(key->alg() << ": " << r.why);
    CHECK(r.ok);
    CHECK(r.principal == "alice");
    REQUIRE(r.targets.has_value());
    CHECK(*r.targets == std::vector<std::string>{"127.0.0.1:22"});
  }
  // The same keys with the optional "alg" and "use" members in the JWKS.
  TempDir dir;
  json k = ec().jwk("ec-1");
  k["alg"] = "ES256";
  k["use"] = "sig";
  Config cfg;
  cfg.jwks_file = dir.write("jwks.json", jwks_text({k}));
  const Authenticator a(cfg);
  CHECK(a.check(bearer(signed_by(ec(), "ES256", "ec-1")), now_s).ok);
}

TEST_CASE("jwks: HS256 stays as it was next to a JWKS", "[gateway][jwks]") {
  const Fixture f(true);
  CHECK(f.check(hs256(hs_key, "")).ok);
  CHECK(f.check(signed_by(rsa(), "RS256", "rsa-1")).ok);
  refused(f.check(hs256("another-secret-of-at-least-32-bytes!!", "")), "jwt bad signature",
          hs256("another-secret-of-at-least-32-bytes!!", ""));
}

TEST_CASE("jwks: the kid selects the key, an unknown kid is refused", "[gateway][jwks]") {
  const Fixture f;
  refuses(f, signed_by(rsa(), "RS256", "rsa-2"), "jwt unknown kid");
  // Right kid, other key: the signature check uses the kid's key only.
  refuses(f, signed_by(rsa2(), "RS256", "rsa-1"), "jwt bad signature");
  refuses(f, signed_by(ec_other(), "ES256", "ec-1"), "jwt bad signature");
  // An asymmetric token without kid is not tried against every key.
  refuses(f, signed_by(rsa(), "RS256", ""), "jwt kid missing (asymmetric keys are chosen by kid)");
}

TEST_CASE("jwks: rotation replaces the key set atomically", "[gateway][jwks]") {
  TempDir dir;
  Config cfg;
  cfg.jwks_file = dir.write("jwks.json", jwks_text({rsa().jwk("2024"), rsa2().jwk("2025")}));
  Authenticator a(cfg);
  const std::string old_tok = signed_by(rsa(), "RS256", "2024");
  const std::string new_tok = signed_by(rsa2(), "RS256", "2025");
  CHECK(a.check(bearer(old_tok), now_s).ok);  // both keys published during the overlap
  CHECK(a.check(bearer(new_tok), now_s).ok);
  a.replace_keys(JwkSet::parse(jwks_text({rsa2().jwk("2025")})));  // the old key retired
  CHECK(a.key_count() == 1);
  refused(a.check(bearer(old_tok), now_s), "jwt unknown kid", old_tok);
  CHECK(a.check(bearer(new_tok), now_s).ok);
  a.replace_keys(nullptr);
  CHECK_FALSE(a.jwt_enabled());
  CHECK(a.check(bearer(new_tok), now_s).why == "bearer tokens not configured");
}

TEST_CASE("jwks: algorithm confusion is refused", "[gateway][jwks]") {
  const Fixture f(true);
  const std::string pem = rsa().public_pem();
  REQUIRE(pem.size() > 32);

  // The classic attack: HS256 with the RSA public key (PEM) as the HMAC key, with the RSA kid
  // or without a kid (then the gateway's own secret is used, never key material from the JWKS).
  refuses(f, hs256(pem, "rsa-1"), "jwt alg does not match the key (RS256 key)");
  refuses(f, hs256(pem, ""), "jwt bad signature");
  // ... and an HS256 "secret" that is the public key PEM is refused at startup.
  {
    TempDir dir;
    Config cfg;
    cfg.jwt_secret_file = dir.write("jwt-secret", pem);
    CHECK_THROWS_WITH(Authenticator(cfg), Catch::Contains("PEM key"));
  }

  // An RS256 token against a gateway that has only an HS256 secret.
  {
    TempDir dir;
    Config cfg;
    cfg.jwt_secret_file = dir.write("jwt-secret", hs_key);
    const Authenticator hs_only(cfg);
    std::string t = signed_by(rsa(), "RS256", "rsa-1");
    refused(hs_only.check(bearer(t), now_s), "jwt unknown kid", t);
    t = signed_by(rsa(), "RS256", "");
    refused(hs_only.check(bearer(t), now_s), "jwt kid missing (asymmetric keys are chosen by kid)",
            t);
  }

  // A valid HS256 token when only asymmetric keys are configured.
  const Fixture jwks_only;
  refuses(jwks_only, hs256(hs_key, ""), "jwt alg HS256 not configured");
  refuses(jwks_only, hs256(hs_key, "rsa-1"), "jwt alg does not match the key (RS256 key)");

  // Each key verifies its own algorithm only, even when the signature is right for the key.
  refuses(f, signed_by(ec(), "ES256", "rsa-1"), "jwt alg does not match the key (RS256 key)");
  refuses(f, signed_by(rsa(), "RS256", "ec-1"), "jwt alg does not match the key (ES256 key)");
  refuses(f, signed_by(rsa(), "RS256", "ed-1"), "jwt alg does not match the key (EdDSA key)");
  refuses(f, signed_by(ed(), "EdDSA", "ec-1"), "jwt alg does not match the key (ES256 key)");
  // RS384 in the header over RS256's signature: the header lies.
  refuses(f, signed_by(rsa(), "RS384", "rsa-1"), "jwt alg does not match the key (RS256 key)");
  refuses(f, signed_by(rsa(), "PS256", ""), "jwt alg not accepted");

  // alg none, in any spelling, with or without a kid, with or without a signature.
  for (const std::string alg : {"none", "None", "NONE"}) {
    for (const std::string kid : {"", "rsa-1"}) {
      json h = {{"alg", alg}};
      if (!kid.empty()) h["kid"] = kid;
      refuses(f, b64url(h.dump()) + "." + b64url(claims().dump()) + ".", "jwt alg none");
      refuses(f, jws_token(h, claims(), [](const std::string& in) { return rsa().sign(in); }),
              "jwt alg none");
    }
  }
}

TEST_CASE("jwks: exp, nbf, iss and aud on the asymmetric path", "[gateway][jwks]") {
  const Fixture f(false, "https://idp.example", "mana-gateway");
  json c = claims();
  c["iss"] = "https://idp.example";
  c["aud"] = "mana-gateway";
  CHECK(f.check(signed_by(ed(), "EdDSA", "ed-1", c)).ok);
  c["aud"] = json::array({"other", "mana-gateway"});
  CHECK(f.check(signed_by(ed(), "EdDSA", "ed-1", c)).ok);

  const auto with = [&](const char* name, const json& v) {
    json d = c;
    if (v.is_null()) {
      d.erase(name);
    } else {
      d[name] = v;
    }
    return signed_by(ec(), "ES256", "ec-1", d);
  };
  refuses(f, with("exp", now_s - 100), "jwt expired");
  refuses(f, with("nbf", now_s + 100), "jwt not yet valid");
  for (const json& bad :
       {json(), json("https://evil.example"), json(7), json::array({"https://idp.example"})}) {
    refuses(f, with("iss", bad), "jwt iss missing or wrong");
  }
  for (const json& bad : {json(), json("mana"), json::array({"other"}), json::array(), json(1)}) {
    refuses(f, with("aud", bad), "jwt aud missing or wrong");
  }
  // Without issuer/audience configured, neither claim is required.
  const Fixture open;
  CHECK(open.check(signed_by(rsa(), "RS256", "rsa-1")).ok);
}

TEST_CASE("jwks: oversized and malformed tokens are refused before any key is used",
          "[gateway][jwks]") {
  const Fixture f;
  json c = claims();
  c["pad"] = std::string(8192, 'x');
  std::string t = signed_by(ed(), "EdDSA", "ed-1", c);
  REQUIRE(t.size() > 8192);
  refused(f.check(t), "jwt too large", t);
  t = signed_by(ed(), "EdDSA", "ed-1");
  refused(f.check(t + "."), "jwt not three parts", t);
  refused(f.check(t + "="), "jwt not base64url", t);
  // A duplicate header member (two readers could see two algs) and `crit`.
  const std::string body = "." + b64url(claims().dump());
  const std::string dup = R"({"alg":"EdDSA","kid":"ed-1","alg":"none"})";
  t = b64url(dup) + body;
  t += "." + b64url(ed().sign(t));
  refused(f.check(t), "jwt header not a JSON object", t);
  t = signed_by(ed(), "EdDSA", "ed-1");
  const json crit = {{"alg", "EdDSA"}, {"kid", "ed-1"}, {"crit", {"exp"}}, {"exp", 1}};
  t = jws_token(crit, claims(), [](const std::string& in) { return ed().sign(in); });
  refused(f.check(t), "jwt crit header not supported", t);
}
