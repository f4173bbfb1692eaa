// Asymmetric test keys for the JWKS verifier tests: generated with OpenSSL, exported as JWKs,
// and used to sign JWS compact tokens (RS256, ES256 as R || S, EdDSA). The tests build tokens
// themselves so that they can also forge what the gateway must refuse.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "test_util.hpp"

namespace mana::gateway::test {

enum class KeyType : std::uint8_t { rsa, ec, ed25519 };

class TestKey {
 public:
  explicit TestKey(KeyType type, std::size_t rsa_bits = 2048) : type_(type) {
    EVP_PKEY* k = nullptr;
    switch (type) {
      case KeyType::rsa:
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", rsa_bits);
        break;
      case KeyType::ec:
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
      case KeyType::ed25519:
        k = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        break;
    }
    if (k == nullptr) throw std::runtime_error("key generation failed");
    key_.reset(k);
  }

  // The algorithm this key's type fixes.
  [[nodiscard]] std::string alg() const {
    return type_ == KeyType::rsa ? "RS256" : type_ == KeyType::ec ? "ES256" : "EdDSA";
  }

  // The public JWK with this kid (no `alg`, no `use`: both are optional).
  [[nodiscard]] nlohmann::json jwk(const std::string& kid) const {
    switch (type_) {
      case KeyType::rsa:
        return {{"kty", "RSA"},
                {"kid", kid},
                {"n", b64url(bn_param(OSSL_PKEY_PARAM_RSA_N, 0))},
                {"e", b64url(bn_param(OSSL_PKEY_PARAM_RSA_E, 0))}};
      case KeyType::ec:
        return {{"kty", "EC"},
                {"kid", kid},
                {"crv", "P-256"},
                {"x", b64url(bn_param(OSSL_PKEY_PARAM_EC_PUB_X, 32))},
                {"y", b64url(bn_param(OSSL_PKEY_PARAM_EC_PUB_Y, 32))}};
      case KeyType::ed25519:
        break;
    }
    unsigned char raw[32];
    std::size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &len) != 1) throw std::runtime_error("raw");
    return {{"kty", "OKP"},
            {"kid", kid},
            {"crv", "Ed25519"},
            {"x", b64url(std::string(reinterpret_cast<const char*>(raw), len))}};
  }

  // The JWS signature over `input` (raw bytes, not yet base64url).
  [[nodiscard]] std::string sign(const std::string& input) const {
    const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                      &EVP_MD_CTX_free);
    const EVP_MD* md = type_ == KeyType::ed25519 ? nullptr : EVP_sha256();
    std::size_t len = 0;
    const auto* in = reinterpret_cast<const unsigned char*>(input.data());
    if (EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), nullptr, &len, in, input.size()) != 1)
      throw std::runtime_error("sign");
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                       input.size()) != 1)
      throw std::runtime_error("sign");
    sig.resize(len);
    return type_ == KeyType::ec ? der_to_rs(sig) : sig;
  }

  // The SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----...").
  [[nodiscard]] std::string public_pem() const {
    const std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1) throw std::runtime_error("pem");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return {data, static_cast<std::size_t>(n)};
  }

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
  };

  // A big-number parameter as big-endian bytes, left-padded to `pad` bytes when pad > 0.
  [[nodiscard]] std::string bn_param(const char* name, int pad) const {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key_.get(), name, &bn) != 1) throw std::runtime_error(name);
    const int n = pad > 0 ? pad : BN_num_bytes(bn);
    std::string out(static_cast<std::size_t>(n), '\0');
    BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), n);
    BN_free(bn);
    return out;
  }

  // DER ECDSA-Sig-Value -> R || S, 32 bytes each (the JWS form).
  static std::string der_to_rs(const std::string& der) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* s = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (s == nullptr) throw std::runtime_error("der");
    std::string rs(64, '\0');
    auto* out = reinterpret_cast<unsigned char*>(rs.data());
    BN_bn2binpad(ECDSA_SIG_get0_r(s), out, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(s), out + 32, 32);
    ECDSA_SIG_free(s);
    return rs;
  }

  KeyType type_;
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
};

// A key generated once per test run (RSA generation is slow) and shared by the tests; `slot`
// tells apart several keys of one type.
inline const TestKey& shared_key(KeyType type, int slot = 0) {
  static std::map<std::pair<KeyType, int>, TestKey> keys;
  auto it = keys.find({type, slot});
  if (it == keys.end())
    it = keys.emplace(std::piecewise_construct, std::forward_as_tuple(type, slot),
                      std::forward_as_tuple(type))
             .first;
  return it->second;
}

// header.payload.signature with `header` and `claims` as JSON and `sign` producing the raw
// signature over "header.payload".
template <class Sign>
std::string jws_token(const nlohmann::json& header, const nlohmann::json& claims, Sign&& sign) {
  const std::string input = b64url(header.dump()) + "." + b64url(claims.dump());
  return input + "." + b64url(sign(input));
}

// {"keys": [...]} of the given JWKs.
inline std::string jwks_text(std::initializer_list<nlohmann::json> keys) {
  return nlohmann::json{{"keys", nlohmann::json::array_t(keys)}}.dump();
}

}  // namespace mana::gateway::test
