// SPDX-License-Identifier: Apache-2.0
// A security key login through the native SSH engine (ssh-engine/) against Debian's stock sshd:
// the engine asks for a signature (SignRequest), a test authenticator made with OpenSSL answers
// as a browser's navigator.credentials.get() would (authenticatorData, clientDataJSON, an ES256
// signature), and the webauthn-sk-ecdsa-sha2-nistp256@openssh.com blob built from it goes out
// through libssh2 unchanged: our patch scripts/patches/libssh2/0001-webauthn-sk-signature.patch.
// Without the patch libssh2 writes the key's algorithm in front of the blob and sshd refuses it.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "engine_harness.hpp"
#include "ssh_engine.hpp"

using mana::ssh::AuthKind;
using mana::ssh::CloseKind;
using mana::ssh::EngineConfig;
using mana::ssh::test::Session;
using mana::ssh::test::sshd;
namespace event = mana::ssh::event;

namespace {

using Bytes = std::vector<std::uint8_t>;

constexpr std::uint8_t user_present = 0x01;
constexpr std::uint8_t user_verified = 0x04;
constexpr const char* key_type = "sk-ecdsa-sha2-nistp256@openssh.com";
constexpr const char* sig_type = "webauthn-sk-ecdsa-sha2-nistp256@openssh.com";
constexpr const char* origin_url = "http://localhost";

void put_u32(Bytes& b, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    b.push_back(static_cast<std::uint8_t>(v >> shift));
}
void put_string(Bytes& b, const Bytes& s) {
  put_u32(b, static_cast<std::uint32_t>(s.size()));
  b.insert(b.end(), s.begin(), s.end());
}
void put_string(Bytes& b, const std::string& s) {
  put_string(b, Bytes(s.begin(), s.end()));
}
// An SSH mpint of a non-negative big-endian number.
void put_mpint(Bytes& b, const BIGNUM* n) {
  Bytes v(static_cast<std::size_t>(BN_num_bytes(n)));
  BN_bn2bin(n, v.data());
  if (!v.empty() && (v[0] & 0x80) != 0) v.insert(v.begin(), 0);
  put_string(b, v);
}

Bytes sha256(const Bytes& in) {
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(in.data(), in.size(), out.data());
  return out;
}

std::string base64(const Bytes& in, bool url) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(),
                                static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  if (!url) return out;
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=')
    out.pop_back();
  return out;
}

/// A P-256 credential that signs like a WebAuthn authenticator for `rp_id` (the key's SSH
/// application), with the clientDataJSON a browser at origin_url writes.
class TestAuthenticator {
 public:
  explicit TestAuthenticator(std::string rp_id)
      : rp_id_(std::move(rp_id)), key_(EVP_EC_gen("P-256"), &EVP_PKEY_free) {
    REQUIRE(key_ != nullptr);
  }

  /// sk-ecdsa-sha2-nistp256@openssh.com blob: type, curve, point, application.
  [[nodiscard]] Bytes public_blob() const {
    std::array<unsigned char, 65> point{};
    std::size_t len = 0;
    REQUIRE(EVP_PKEY_get_octet_string_param(key_.get(), "encoded-pub-key", point.data(),
                                            point.size(), &len) == 1);
    REQUIRE(len == 65);
    Bytes b;
    put_string(b, std::string(key_type));
    put_string(b, std::string("nistp256"));
    put_string(b, Bytes(point.begin(), point.end()));
    put_string(b, rp_id_);
    return b;
  }
  [[nodiscard]] std::string authorized_keys_line(const std::string& options = {}) const {
    return (options.empty() ? "" : options + " ") + key_type + " " + base64(public_blob(), false) +
           " webauthn-test";
  }

  /// The webauthn signature blob for `data` (what js-glue assembles from an assertion).
  Bytes sign(const Bytes& data, std::uint8_t flags, bool corrupt = false) {
    ++counter_;
    const std::string client_data = R"({"type":"webauthn.get","challenge":")" + base64(data, true) +
                                    R"(","origin":")" + origin_url + R"(","crossOrigin":false})";
    const Bytes client_bytes(client_data.begin(), client_data.end());
    Bytes signed_data = sha256(Bytes(rp_id_.begin(), rp_id_.end()));  // authenticatorData
    signed_data.push_back(flags);
    put_u32(signed_data, counter_);
    const Bytes client_hash = sha256(client_bytes);
    signed_data.insert(signed_data.end(), client_hash.begin(), client_hash.end());

    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    REQUIRE(EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key_.get()) == 1);
    std::size_t der_len = 0;
    REQUIRE(EVP_DigestSign(ctx.get(), nullptr, &der_len, signed_data.data(), signed_data.size()) ==
            1);
    Bytes der(der_len);
    REQUIRE(EVP_DigestSign(ctx.get(), der.data(), &der_len, signed_data.data(),
                           signed_data.size()) == 1);
    const unsigned char* p = der.data();
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
        d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der_len)), &ECDSA_SIG_free);
    REQUIRE(sig != nullptr);
    Bytes rs;
    put_mpint(rs, ECDSA_SIG_get0_r(sig.get()));
    put_mpint(rs, ECDSA_SIG_get0_s(sig.get()));
    if (corrupt) rs[rs.size() - 1] ^= 0x01;  // the last byte of s

    Bytes blob;
    put_string(blob, std::string(sig_type));
    put_string(blob, rs);
    blob.push_back(flags);
    put_u32(blob, counter_);
    put_string(blob, std::string(origin_url));
    put_string(blob, client_bytes);
    put_string(blob, Bytes{});  // extensions (flag ED clear)
    return blob;
  }

 private:
  std::string rp_id_;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
  std::uint32_t counter_ = 0;
};

/// Adds a line to the test sshd's authorized_keys (sshd reads it at every login).
void authorize(const std::string& line) {
  std::ofstream f(sshd().dir + "/authorized_keys", std::ios::app);
  f << line << "\n";
  REQUIRE(f.good());
}

std::string sshd_log() {
  std::ifstream f(sshd().dir + "/sshd.log");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// sshd writes its "Accepted" line right after the success reply: give it a moment.
bool sshd_log_contains(const std::string& needle) {
  for (int i = 0; i < 40; ++i) {
    if (sshd_log().find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

EngineConfig security_key_config(const TestAuthenticator& a) {
  EngineConfig c;
  c.username = sshd().user;
  const Bytes blob = a.public_blob();
  c.auth.push_back({AuthKind::security_key, std::string(blob.begin(), blob.end()), {}});
  c.command = "echo webauthn-ok";
  return c;
}

int sign_requests(const Session& s) {
  int n = 0;
  for (const auto& ev : s.events())
    n += std::holds_alternative<event::SignRequest>(ev) ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("ssh engine: a webauthn signature of a security key logs in to stock sshd",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");
  authorize(a.authorized_keys_line());
  Session s(security_key_config(a), sshd().port, "webauthn_login");
  s.accept_fingerprint(sshd().host_fingerprint);
  Bytes challenge;
  s.sign_with([&](const Bytes& data) -> std::optional<Bytes> {
    challenge = data;
    return a.sign(data, user_present | user_verified);
  });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(sign_requests(s) == 1);
  // The data to sign: string session id, then the USERAUTH_REQUEST (50) with the key's algorithm.
  REQUIRE(challenge.size() > 100);
  const std::string as_text(challenge.begin(), challenge.end());
  CHECK(as_text.find(key_type) != std::string::npos);
  CHECK(as_text.find("webauthn") == std::string::npos);
  REQUIRE(s.closed()->kind == CloseKind::none);
  CHECK(s.out() == "webauthn-ok\n");
  CHECK(sshd_log_contains("Accepted publickey for " + sshd().user));
  CHECK(sshd_log_contains("ECDSA-SK SHA256:"));
}

TEST_CASE("ssh engine: sshd refuses a bogus webauthn signature, with the methods it allows",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");
  authorize(a.authorized_keys_line());
  Session s(security_key_config(a), sshd().port, "webauthn_bogus");
  s.accept_fingerprint(sshd().host_fingerprint);
  s.sign_with([&](const Bytes& data) -> std::optional<Bytes> {
    return a.sign(data, user_present | user_verified, /*corrupt=*/true);
  });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  REQUIRE(s.closed()->kind == CloseKind::auth_failed);
  CHECK(s.closed()->methods.find("publickey") != std::string::npos);
  CHECK(sign_requests(s) == 1);
}

TEST_CASE("ssh engine: sshd refuses a webauthn signature without user presence",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");
  authorize(a.authorized_keys_line());
  Session s(security_key_config(a), sshd().port, "webauthn_no_presence");
  s.accept_fingerprint(sshd().host_fingerprint);
  s.sign_with([&](const Bytes& data) -> std::optional<Bytes> {
    return a.sign(data, user_verified);  // UP clear
  });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.closed()->kind == CloseKind::auth_failed);
  CHECK(sshd_log_contains("user presence (authenticator touch) requirement not met"));
}

TEST_CASE("ssh engine: verify-required refuses a webauthn signature without user verification",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");
  authorize(a.authorized_keys_line("verify-required"));
  Session s(security_key_config(a), sshd().port, "webauthn_no_verification");
  s.accept_fingerprint(sshd().host_fingerprint);
  s.sign_with([&](const Bytes& data) -> std::optional<Bytes> {
    return a.sign(data, user_present);  // UV clear
  });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.closed()->kind == CloseKind::auth_failed);
  CHECK(sshd_log_contains("user verification requirement not met"));
}

TEST_CASE("ssh engine: a cancelled security key signature closes with auth_cancelled",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");
  authorize(a.authorized_keys_line());
  Session s(security_key_config(a), sshd().port, "webauthn_cancelled");
  s.accept_fingerprint(sshd().host_fingerprint);
  bool waited = false;
  s.sign_with([&](const Bytes& /*data*/) -> std::optional<Bytes> {
    // The engine waits in auth_sign, sending nothing, until the answer.
    waited = s.engine().state() == mana::ssh::EngineState::auth_sign;
    return std::nullopt;
  });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(waited);
  CHECK(s.closed()->kind == CloseKind::auth_cancelled);
}

TEST_CASE("ssh engine: a security key sshd does not know is refused before any signature",
          "[ssh-engine][webauthn]") {
  TestAuthenticator a("localhost");  // not in authorized_keys
  Session s(security_key_config(a), sshd().port, "webauthn_unknown_key");
  s.accept_fingerprint(sshd().host_fingerprint);
  s.sign_with(
      [&](const Bytes& data) -> std::optional<Bytes> { return a.sign(data, user_present); });
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.closed()->kind == CloseKind::auth_failed);
  CHECK(sign_requests(s) == 0);
}
