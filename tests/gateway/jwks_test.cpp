// JWT verification with asymmetric keys from a JWKS (jwk.cpp, jws.cpp, auth.cpp): each
// algorithm with its key, key selection and rotation by kid, every algorithm-confusion case,
// iss/aud, and the time claims on this path. Keys are generated per run with OpenSSL.
#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "config.hpp"
#include "jwk.hpp"
#include "test_keys.hpp"
#include "test_util.hpp"

using mana::gateway::Authenticator;
using mana::gateway::AuthResult;
using mana::gateway::Config;
using mana::gateway::JwkSet;
using mana::gateway::test::b64url;
using mana::gateway::test::bearer;
using mana::gateway::test::jwks_text;
using mana::gateway::test::jws_token;
using mana::gateway::test::KeyType;
using mana::gateway::test::shared_key;
using mana::gateway::test::TempDir;
using mana::gateway::test::TestKey;
using nlohmann::json;

namespace {

constexpr std::int64_t now_s = 1'700'000'000;
const std::string hs_key = "0123456789abcdef0123456789abcdef-jwks-test";

const TestKey& rsa() {
  return shared_key(KeyType::rsa);
}
const TestKey& rsa2() {
  return shared_key(KeyType::rsa, 1);
}
const TestKey& ec() {
  return shared_key(KeyType::ec);
}
const TestKey& ec_other() {
  return shared_key(KeyType::ec, 1);
}
const TestKey& ed() {
  return shared_key(KeyType::ed25519);
}

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

std::string hmac_sha256(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
               &len) != nullptr);
  return {reinterpret_cast<const char*>(mac), len};
}

std::string hs256(const std::string& secret, const std::string& kid, const json& c = claims()) {
  json h = {{"alg", "HS256"}, {"typ", "JWT"}};
  if (!kid.empty()) h["kid"] = kid;
  return jws_token(h, c, [&](const std::string& in) { return hmac_sha256(secret, in); });
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

// Refused, and the log reason says `why` (never the token).
void refused(const AuthResult& r, const std::string& why, const std::string& token) {
  INFO("reason: " << r.why);
  CHECK_FALSE(r.ok);
  CHECK(r.principal.empty());
  CHECK(r.why == why);
  CHECK(r.why.find(token.substr(0, token.find('.'))) == std::string::npos);
}

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
  std::string t = signed_by(rsa(), "RS256", "rsa-2");
  refused(f.check(t), "jwt unknown kid", t);
  // Right kid, other key: the signature check uses the kid's key only.
  t = signed_by(rsa2(), "RS256", "rsa-1");
  refused(f.check(t), "jwt bad signature", t);
  t = signed_by(ec_other(), "ES256", "ec-1");
  refused(f.check(t), "jwt bad signature", t);
  // An asymmetric token without kid is not tried against every key.
  t = signed_by(rsa(), "RS256", "");
  refused(f.check(t), "jwt kid missing (asymmetric keys are chosen by kid)", t);
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
  std::string t = hs256(pem, "rsa-1");
  refused(f.check(t), "jwt alg does not match the key (RS256 key)", t);
  t = hs256(pem, "");
  refused(f.check(t), "jwt bad signature", t);
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
    t = signed_by(rsa(), "RS256", "rsa-1");
    refused(hs_only.check(bearer(t), now_s), "jwt unknown kid", t);
    t = signed_by(rsa(), "RS256", "");
    refused(hs_only.check(bearer(t), now_s), "jwt kid missing (asymmetric keys are chosen by kid)",
            t);
  }

  // A valid HS256 token when only asymmetric keys are configured.
  const Fixture jwks_only;
  t = hs256(hs_key, "");
  refused(jwks_only.check(t), "jwt alg HS256 not configured", t);
  t = hs256(hs_key, "rsa-1");
  refused(jwks_only.check(t), "jwt alg does not match the key (RS256 key)", t);

  // Each key verifies its own algorithm only, even when the signature is right for the key.
  t = signed_by(ec(), "ES256", "rsa-1");
  refused(f.check(t), "jwt alg does not match the key (RS256 key)", t);
  t = signed_by(rsa(), "RS256", "ec-1");
  refused(f.check(t), "jwt alg does not match the key (ES256 key)", t);
  t = signed_by(rsa(), "RS256", "ed-1");
  refused(f.check(t), "jwt alg does not match the key (EdDSA key)", t);
  t = signed_by(ed(), "EdDSA", "ec-1");
  refused(f.check(t), "jwt alg does not match the key (ES256 key)", t);
  t = signed_by(rsa(), "RS384", "rsa-1");  // signature is RS256's; the header lies
  refused(f.check(t), "jwt alg does not match the key (RS256 key)", t);
  t = signed_by(rsa(), "PS256", "");
  refused(f.check(t), "jwt alg not accepted", t);

  // alg none, in any spelling, with or without a kid, with or without a signature.
  for (const std::string alg : {"none", "None", "NONE"}) {
    for (const std::string kid : {"", "rsa-1"}) {
      json h = {{"alg", alg}};
      if (!kid.empty()) h["kid"] = kid;
      t = b64url(h.dump()) + "." + b64url(claims().dump()) + ".";
      refused(f.check(t), "jwt alg none", t);
      t = jws_token(h, claims(), [](const std::string& in) { return rsa().sign(in); });
      refused(f.check(t), "jwt alg none", t);
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
  std::string t = with("exp", now_s - 100);
  refused(f.check(t), "jwt expired", t);
  t = with("nbf", now_s + 100);
  refused(f.check(t), "jwt not yet valid", t);
  for (const json& bad :
       {json(), json("https://evil.example"), json(7), json::array({"https://idp.example"})}) {
    t = with("iss", bad);
    refused(f.check(t), "jwt iss missing or wrong", t);
  }
  for (const json& bad : {json(), json("mana"), json::array({"other"}), json::array(), json(1)}) {
    t = with("aud", bad);
    refused(f.check(t), "jwt aud missing or wrong", t);
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
