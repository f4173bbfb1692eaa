#include "jwk.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include <array>
#include <fstream>
#include <stdexcept>

#include "jws.hpp"

namespace mana::gateway {

namespace {

// unique_ptr deleter calling OpenSSL's free function F.
template <auto F>
struct Free {
  template <class T>
  void operator()(T* p) const noexcept {
    F(p);
  }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Free<&EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Free<&EVP_MD_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Free<&BN_free>>;
using ParamBldPtr = std::unique_ptr<OSSL_PARAM_BLD, Free<&OSSL_PARAM_BLD_free>>;
using ParamPtr = std::unique_ptr<OSSL_PARAM, Free<&OSSL_PARAM_free>>;
using EcdsaSigPtr = std::unique_ptr<ECDSA_SIG, Free<&ECDSA_SIG_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

constexpr int min_rsa_bits = 2048;
constexpr std::size_t max_rsa_modulus_bytes = 1024;  // 8192 bits
constexpr std::size_t max_rsa_exponent_bytes = 8;
constexpr std::size_t p256_coordinate_bytes = 32;
constexpr std::size_t ed25519_key_bytes = 32;

[[noreturn]] void fail(const std::string& where, const std::string& msg) {
  throw std::runtime_error("jwks " + where + ": " + msg);
}

// Whether `jwk` has a string member `name` equal to `value`.
bool member_is(const nlohmann::json& jwk, const char* name, std::string_view value) {
  const auto it = jwk.find(name);
  return it != jwk.end() && it->is_string() && it->get<std::string>() == value;
}

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// A base64url member of `jwk` (required), decoded.
std::string b64_member(const nlohmann::json& jwk, const char* name, const std::string& where) {
  const auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) fail(where, std::string("'") + name + "' missing");
  auto v = base64url_decode(it->get<std::string>());
  if (!v || v->empty()) fail(where, std::string("'") + name + "' is not base64url");
  return std::move(*v);
}

// EVP_PKEY_fromdata over the parameters `bld` holds; the key must pass OpenSSL's public check.
PkeyPtr key_from_params(const char* type, OSSL_PARAM_BLD* bld, const std::string& where) {
  const ParamPtr params(OSSL_PARAM_BLD_to_param(bld));
  const PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    fail(where, "OpenSSL refused the key");
  PkeyPtr key(raw, &EVP_PKEY_free);
  const PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) fail(where, "not a valid public key");
  return key;
}

PkeyPtr rsa_key(const nlohmann::json& jwk, const std::string& where) {
  const std::string n = b64_member(jwk, "n", where);
  const std::string e = b64_member(jwk, "e", where);
  if (n.size() > max_rsa_modulus_bytes || e.size() > max_rsa_exponent_bytes)
    fail(where, "RSA modulus or exponent too large");
  const BnPtr bn_n(BN_bin2bn(bytes(n), static_cast<int>(n.size()), nullptr));
  const BnPtr bn_e(BN_bin2bn(bytes(e), static_cast<int>(e.size()), nullptr));
  const ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get()) != 1)
    fail(where, "out of memory");
  PkeyPtr key = key_from_params("RSA", bld.get(), where);
  if (EVP_PKEY_get_bits(key.get()) < min_rsa_bits) fail(where, "RSA key shorter than 2048 bits");
  return key;
}

PkeyPtr ec_key(const nlohmann::json& jwk, const std::string& where) {
  if (!member_is(jwk, "crv", "P-256")) fail(where, "EC keys must use crv P-256 (ES256)");
  const std::string x = b64_member(jwk, "x", where);
  const std::string y = b64_member(jwk, "y", where);
  if (x.size() != p256_coordinate_bytes || y.size() != p256_coordinate_bytes)
    fail(where, "P-256 coordinates must be 32 bytes each");
  const std::string point = '\x04' + x + y;  // SEC 1 uncompressed point
  const ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1)
    fail(where, "out of memory");
  return key_from_params("EC", bld.get(), where);
}

PkeyPtr okp_key(const nlohmann::json& jwk, const std::string& where) {
  if (!member_is(jwk, "crv", "Ed25519")) fail(where, "OKP keys must use crv Ed25519 (EdDSA)");
  const std::string x = b64_member(jwk, "x", where);
  if (x.size() != ed25519_key_bytes) fail(where, "Ed25519 keys are 32 bytes");
  PkeyPtr key(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes(x), x.size()),
              &EVP_PKEY_free);
  if (!key) fail(where, "OpenSSL refused the key");
  return key;
}

// JWS ES256 signatures are R || S (32 bytes each); OpenSSL verifies DER.
std::string ecdsa_der(std::string_view rs) {
  if (rs.size() != 2 * p256_coordinate_bytes) return {};
  const EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(bytes(rs), static_cast<int>(p256_coordinate_bytes), nullptr);
  BIGNUM* s = BN_bin2bn(bytes(rs.substr(p256_coordinate_bytes)),
                        static_cast<int>(p256_coordinate_bytes), nullptr);
  if (!sig || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return {};
  }
  const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (len <= 0) return {};
  std::string der(static_cast<std::size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &p) != len) return {};
  return der;
}

}  // namespace

std::string_view alg_name(JwsAlg alg) noexcept {
  switch (alg) {
    case JwsAlg::rs256:
      return "RS256";
    case JwsAlg::es256:
      return "ES256";
    case JwsAlg::eddsa:
      return "EdDSA";
  }
  return "?";
}

void Jwk::KeyFree::operator()(EVP_PKEY* k) const noexcept {
  EVP_PKEY_free(k);
}

Jwk::Jwk(std::string kid, JwsAlg alg, EVP_PKEY* key) noexcept
    : kid_(std::move(kid)), alg_(alg), key_(key) {}

bool Jwk::verify(std::string_view signing_input, std::string_view signature) const {
  std::string der;
  if (alg_ == JwsAlg::es256) {
    der = ecdsa_der(signature);
    if (der.empty()) return false;
    signature = der;
  }
  const MdCtxPtr ctx(EVP_MD_CTX_new());
  // Ed25519 hashes internally (no digest); RS256 and ES256 use SHA-256. RSA keys default to
  // PKCS #1 v1.5 padding, which is RS256.
  const EVP_MD* md = alg_ == JwsAlg::eddsa ? nullptr : EVP_sha256();
  return ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key_.get()) == 1 &&
         EVP_DigestVerify(ctx.get(), bytes(signature), signature.size(), bytes(signing_input),
                          signing_input.size()) == 1;
}

std::shared_ptr<const JwkSet> JwkSet::parse(std::string_view text) {
  const auto doc = parse_json_object(text);
  if (!doc) fail("file", "not a JSON object (or a duplicate member name)");
  const auto keys = doc->find("keys");
  if (keys == doc->end() || !keys->is_array()) fail("file", "'keys' must be an array");
  if (keys->size() > max_keys) fail("file", "more than 16 keys");
  auto set = std::make_shared<JwkSet>();
  for (std::size_t i = 0; i < keys->size(); ++i) {
    const nlohmann::json& jwk = (*keys)[i];
    std::string where = "key " + std::to_string(i);
    if (!jwk.is_object()) fail(where, "not an object");
    const auto kid = jwk.find("kid");
    if (kid == jwk.end() || !kid->is_string() || kid->get<std::string>().empty() ||
        kid->get<std::string>().size() > max_kid_bytes)
      fail(where, "'kid' must be a string of 1..128 characters");
    where += " (kid " + kid->get<std::string>() + ")";
    if (set->find(kid->get<std::string>()) != nullptr) fail(where, "duplicate kid");
    if (jwk.contains("d")) fail(where, "holds a private key; the gateway needs public keys only");
    if (jwk.contains("use") && !member_is(jwk, "use", "sig")) fail(where, "'use' must be \"sig\"");
    JwsAlg alg = JwsAlg::rs256;
    PkeyPtr key(nullptr, &EVP_PKEY_free);
    if (member_is(jwk, "kty", "RSA")) {
      key = rsa_key(jwk, where);
    } else if (member_is(jwk, "kty", "EC")) {
      alg = JwsAlg::es256;
      key = ec_key(jwk, where);
    } else if (member_is(jwk, "kty", "OKP")) {
      alg = JwsAlg::eddsa;
      key = okp_key(jwk, where);
    } else {
      fail(where, "kty must be RSA, EC or OKP (HS256 keys go in auth.jwt_secret_file)");
    }
    if (jwk.contains("alg") && !member_is(jwk, "alg", alg_name(alg)))
      fail(where, "'alg' must be " + std::string(alg_name(alg)) + " for this key type");
    set->keys_.emplace_back(kid->get<std::string>(), alg, key.release());
  }
  return set;
}

std::shared_ptr<const JwkSet> JwkSet::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read auth.jwks_file " + path);
  std::array<char, 4096> buf{};
  std::string text;
  while (f.read(buf.data(), buf.size()) || f.gcount() > 0) {
    text.append(buf.data(), static_cast<std::size_t>(f.gcount()));
    if (text.size() > max_file_bytes)
      throw std::runtime_error("auth.jwks_file " + path + " is larger than 64 KiB");
  }
  return parse(text);
}

const Jwk* JwkSet::find(std::string_view kid) const noexcept {
  for (const Jwk& k : keys_)
    if (k.kid() == kid) return &k;
  return nullptr;
}

}  // namespace mana::gateway
