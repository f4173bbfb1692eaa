// Public keys from a JWKS file (RFC 7517) and JWS signature checks with OpenSSL 3 (libjwt 1.10
// in Debian 12 has no EdDSA and no JWKS support).
//
// A key's type fixes its one algorithm: RSA (n >= 2048 bits) only RS256, EC P-256 only ES256,
// OKP Ed25519 only EdDSA. Every key needs a distinct `kid`; a key's optional `alg` must be that
// algorithm and its optional `use` must be "sig". Private keys (`d`), `oct` keys and every other
// key type or curve make the whole file invalid, so a mistake cannot silently drop a key.
// A JwkSet is immutable: rotation replaces the whole set (Authenticator::replace_keys).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

namespace mana::gateway {

enum class JwsAlg : std::uint8_t { rs256, es256, eddsa };

// "RS256", "ES256", "EdDSA".
std::string_view alg_name(JwsAlg alg) noexcept;

class Jwk {
 public:
  Jwk(std::string kid, JwsAlg alg, EVP_PKEY* key) noexcept;  // takes ownership of `key`
  [[nodiscard]] const std::string& kid() const noexcept { return kid_; }
  [[nodiscard]] JwsAlg alg() const noexcept { return alg_; }
  // Whether `signature` (JWS form: RSASSA-PKCS1-v1_5 bytes, ECDSA R || S, Ed25519 bytes) signs
  // `signing_input` under this key with this key's algorithm.
  [[nodiscard]] bool verify(std::string_view signing_input, std::string_view signature) const;

 private:
  struct KeyFree {
    void operator()(EVP_PKEY* k) const noexcept;
  };
  std::string kid_;
  JwsAlg alg_;
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
};

class JwkSet {
 public:
  static constexpr std::size_t max_file_bytes = 64 * 1024;
  static constexpr std::size_t max_keys = 16;

  // Parses a JWKS document ({"keys": [...]}); throws std::runtime_error naming the bad key.
  static std::shared_ptr<const JwkSet> parse(std::string_view text);
  // Reads and parses `path` (at most max_file_bytes); throws std::runtime_error.
  static std::shared_ptr<const JwkSet> load(const std::string& path);

  // The key with this kid, or nullptr.
  [[nodiscard]] const Jwk* find(std::string_view kid) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return keys_.size(); }

 private:
  std::vector<Jwk> keys_;
};

}  // namespace mana::gateway
