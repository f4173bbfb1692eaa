// SPDX-License-Identifier: Apache-2.0
// What the JWT tests share (auth_test.cpp, jwk_set_test.cpp, jwks_test.cpp): the per-run test
// keys by role, HMAC for hand-made HS* tokens, and the check that a token was refused.
#pragma once

#include <catch2/catch.hpp>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "auth.hpp"
#include "test_keys.hpp"

namespace mana::gateway::test {

// The shared per-run keys (test_keys.hpp): two RSA, two EC P-256, one Ed25519.
inline const TestKey& rsa() {
  return shared_key(KeyType::rsa);
}
inline const TestKey& rsa2() {
  return shared_key(KeyType::rsa, 1);
}
inline const TestKey& ec() {
  return shared_key(KeyType::ec);
}
inline const TestKey& ec_other() {
  return shared_key(KeyType::ec, 1);
}
inline const TestKey& ed() {
  return shared_key(KeyType::ed25519);
}

// The raw HMAC of `data` under `key` with digest `md`.
inline std::string hmac(const EVP_MD* md, const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  REQUIRE(HMAC(md, key.data(), static_cast<int>(key.size()),
               reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac,
               &len) != nullptr);
  return {reinterpret_cast<const char*>(mac), len};
}

// Refused, and the log reason says `why` (never the token).
inline void refused(const AuthResult& r, const std::string& why, const std::string& token) {
  INFO("reason: " << r.why);
  CHECK_FALSE(r.ok);
  CHECK(r.principal.empty());
  CHECK(r.why == why);
  CHECK(r.why.find(token.substr(0, token.find('.'))) == std::string::npos);
}

// `checker.check(token)` refuses the token with reason `why`.
template <class Checker>
void refuses(const Checker& checker, const std::string& token, const std::string& why) {
  refused(checker.check(token), why, token);
}

}  // namespace mana::gateway::test
