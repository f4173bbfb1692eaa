// The JWKS file (JwkSet::parse / load, jwk.cpp) and the strict base64url decoder (jws.cpp):
// every key the gateway cannot use makes the file invalid, with a message naming the key.
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "config.hpp"
#include "jwk.hpp"
#include "jws.hpp"
#include "jwt_test_util.hpp"
#include "test_keys.hpp"
#include "test_util.hpp"

using mana::gateway::base64url_decode;
using mana::gateway::JwkSet;
using namespace mana::gateway::test;  // keys, jwks_text, TempDir (jwt_test_util.hpp)
using nlohmann::json;

namespace {

// JwkSet::parse of one key, `change` applied to ec()'s JWK first.
template <class Change>
std::string parse_error(Change&& change) {
  json k = ec().jwk("k1");
  change(k);
  try {
    (void)JwkSet::parse(jwks_text({k}));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "accepted";
}

}  // namespace

TEST_CASE("jwk set: keys the gateway cannot use make the file invalid", "[gateway][jwks]") {
  CHECK(parse_error([](json&) {}) == "accepted");
  CHECK(parse_error([](json& k) { k["d"] = "AAAA"; }) ==
        "jwks key 0 (kid k1): holds a private key; the gateway needs public keys only");
  CHECK(parse_error([](json& k) { k["use"] = "enc"; }) ==
        "jwks key 0 (kid k1): 'use' must be \"sig\"");
  CHECK(parse_error([](json& k) { k["alg"] = "RS256"; }) ==
        "jwks key 0 (kid k1): 'alg' must be ES256 for this key type");
  CHECK(parse_error([](json& k) { k["crv"] = "P-384"; }) ==
        "jwks key 0 (kid k1): EC keys must use crv P-256 (ES256)");
  CHECK(parse_error([](json& k) { k.erase("kid"); }) ==
        "jwks key 0: 'kid' must be a string of 1..128 characters");
  CHECK(parse_error([](json& k) { k["kid"] = std::string(129, 'k'); }) ==
        "jwks key 0: 'kid' must be a string of 1..128 characters");
  CHECK(parse_error([](json& k) {
          k = {{"kty", "oct"}, {"kid", "k1"}, {"k", "c2VjcmV0"}};
        }) ==
        "jwks key 0 (kid k1): kty must be RSA, EC or OKP (HS256 keys go in auth.jwt_secret_file)");
  CHECK(parse_error([](json& k) { k["x"] = "AAAA"; }) ==
        "jwks key 0 (kid k1): P-256 coordinates must be 32 bytes each");
  CHECK(parse_error([](json& k) { k["x"] = k["x"].get<std::string>() + "="; }) ==
        "jwks key 0 (kid k1): 'x' is not base64url");
  // A point that is not on the curve: y + 1.
  CHECK(parse_error([](json& k) {
          std::string y = *base64url_decode(k["y"].get<std::string>());
          y.back() = static_cast<char>(y.back() ^ 1);
          k["y"] = b64url(y);
        }).find("jwks key 0 (kid k1): ") == 0);

  const TestKey small(KeyType::rsa, 1024);
  CHECK_THROWS_WITH(JwkSet::parse(jwks_text({small.jwk("r")})),
                    "jwks key 0 (kid r): RSA key shorter than 2048 bits");
  const TestKey ed(KeyType::ed25519);
  json okp = ed.jwk("e");
  okp["crv"] = "X25519";
  CHECK_THROWS_WITH(JwkSet::parse(jwks_text({okp})),
                    "jwks key 0 (kid e): OKP keys must use crv Ed25519 (EdDSA)");
  CHECK_THROWS_WITH(JwkSet::parse(jwks_text({ec().jwk("a"), ed.jwk("a")})),
                    "jwks key 1 (kid a): duplicate kid");
}

TEST_CASE("jwk set: bounds on the file", "[gateway][jwks]") {
  json keys = json::array();
  for (int i = 0; i < 17; ++i)
    keys.push_back(ec().jwk("k" + std::to_string(i)));
  CHECK_THROWS_WITH(JwkSet::parse(json{{"keys", keys}}.dump()), "jwks file: more than 16 keys");
  keys.erase(keys.begin());
  CHECK(JwkSet::parse(json{{"keys", keys}}.dump())->size() == 16);
  CHECK_THROWS_WITH(JwkSet::parse("[]"),
                    "jwks file: not a JSON object (or a duplicate member name)");
  CHECK_THROWS_WITH(JwkSet::parse(R"({"keys":[],"keys":[]})"),
                    "jwks file: not a JSON object (or a duplicate member name)");
  CHECK_THROWS_WITH(JwkSet::parse(R"({"keys":{}})"), "jwks file: 'keys' must be an array");
  CHECK(JwkSet::parse(R"({"keys":[]})")->size() == 0);

  TempDir dir;
  const std::string big = jwks_text({ec().jwk("k")}) + std::string(64 * 1024, ' ');
  CHECK_THROWS_WITH(JwkSet::load(dir.write("big.json", big)),
                    Catch::Contains("larger than 64 KiB"));
  CHECK_THROWS_WITH(JwkSet::load((dir.path() / "missing.json").string()),
                    Catch::Contains("cannot read auth.jwks_file"));
  CHECK(JwkSet::load(dir.write("ok.json", jwks_text({ec().jwk("k")})))->find("k") != nullptr);
}

TEST_CASE("jwk set: [auth] jwks_file, issuer and audience in the config", "[gateway][jwks]") {
  TempDir dir;
  dir.write("keys.json", "{}");
  const auto c = mana::gateway::load_config(dir.write(
      "gw.toml",
      "[auth]\njwks_file = \"keys.json\"\nissuer = \"https://idp\"\naudience = \"gw\"\n"));
  CHECK(c.jwks_file == (dir.path() / "keys.json").string());
  CHECK(c.issuer == "https://idp");
  CHECK(c.audience == "gw");
  CHECK_THROWS_WITH(config_from("[auth]\njwks_file = 3\n"), "auth.jwks_file must be a string");
  CHECK_THROWS_WITH(config_from("[auth]\nissuer = \"" + std::string(1025, 'i') + "\"\n"),
                    "auth.issuer and auth.audience are at most 1024 bytes");
}

TEST_CASE("jws: base64url decoding is strict", "[gateway][jwks]") {
  CHECK(base64url_decode("") == std::string());
  CHECK(base64url_decode("YQ") == std::string("a"));
  CHECK(base64url_decode("YWI") == std::string("ab"));
  CHECK(base64url_decode("-_8") == std::string("\xfb\xff"));
  CHECK_FALSE(base64url_decode("YQ=="));  // padding
  CHECK_FALSE(base64url_decode("+/8"));   // standard alphabet
  CHECK_FALSE(base64url_decode("Y Q"));
  CHECK_FALSE(base64url_decode("YQ\n"));
  CHECK_FALSE(base64url_decode("Y"));   // 1 mod 4
  CHECK_FALSE(base64url_decode("YR"));  // non-canonical: unused bits set
  CHECK_FALSE(base64url_decode("YWJ"));
}
