#include "auth.hpp"

#include <jwt.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "jws.hpp"

namespace mana::gateway {

namespace {

struct JwtFree {
  void operator()(jwt_t* j) const noexcept { jwt_free(j); }
};
struct CharFree {
  void operator()(char* p) const noexcept { std::free(p); }  // NOLINT(cppcoreguidelines-no-malloc)
};

bool is_int(const nlohmann::json& v) {
  return v.is_number_integer() || v.is_number_unsigned();
}

std::int64_t as_int(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    return u > static_cast<std::uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(u);
  }
  return v.get<std::int64_t>();
}

// `aud` is a string or an array of strings (RFC 7519 §4.1.3); one of them must be `want`.
bool audience_matches(const nlohmann::json& claims, const std::string& want) {
  const auto aud = claims.find("aud");
  if (aud == claims.end()) return false;
  if (aud->is_string()) return aud->get<std::string>() == want;
  if (!aud->is_array() || aud->size() > 64) return false;
  return std::any_of(aud->begin(), aud->end(), [&](const nlohmann::json& a) {
    return a.is_string() && a.get<std::string>() == want;
  });
}

}  // namespace

std::string normalise_target(std::string_view host, std::uint16_t port) {
  std::string h(host);
  std::transform(h.begin(), h.end(), h.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (!h.empty() && h.back() == '.') h.pop_back();
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return h + ":" + std::to_string(port);
}

Authenticator::Authenticator(const Config& cfg)
    : issuer_(cfg.issuer),
      audience_(cfg.audience),
      allow_none_(cfg.allow_none),
      skew_(static_cast<std::int64_t>(cfg.clock_skew_s)) {
  if (!cfg.jwks_file.empty()) keys_.store(JwkSet::load(cfg.jwks_file));
  if (cfg.jwt_secret_file.empty()) return;
  std::ifstream f(cfg.jwt_secret_file, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read auth.jwt_secret_file " + cfg.jwt_secret_file);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // A trailing newline (as editors and `echo` write) is not part of the key.
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  if (s.size() < 32)
    throw std::runtime_error("auth.jwt_secret_file must hold at least 32 bytes (HS256 key)");
  // A PEM key as HMAC secret is the classic algorithm-confusion set-up (public key text as the
  // HS256 key): refused, the HS256 key must be random bytes.
  if (s.find("-----BEGIN") != std::string::npos)
    throw std::runtime_error(
        "auth.jwt_secret_file holds a PEM key; HS256 needs a random secret "
        "(public keys go in auth.jwks_file)");
  secret_ = std::move(s);
}

std::size_t Authenticator::key_count() const noexcept {
  const auto keys = keys_.load();
  return keys ? keys->size() : 0;
}

void Authenticator::replace_keys(std::shared_ptr<const JwkSet> keys) noexcept {
  keys_.store(std::move(keys));
}

void Authenticator::take_from(Authenticator& next) noexcept {
  secret_.swap(next.secret_);
  replace_keys(next.keys_.load());
  issuer_.swap(next.issuer_);
  audience_.swap(next.audience_);
  allow_none_ = next.allow_none_;
  skew_ = next.skew_;
}

std::optional<nlohmann::json> Authenticator::verified_claims(const std::string& token,
                                                             AuthResult& r) const {
  auto jws = parse_jws(token, r.why);
  if (!jws) return std::nullopt;
  std::string alg_lower = jws->alg;
  std::transform(alg_lower.begin(), alg_lower.end(), alg_lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (alg_lower == "none") {
    r.why = "jwt alg none";
    return std::nullopt;
  }
  if (jws->kid) {
    // One snapshot of the key set for this check (replace_keys may swap it meanwhile).
    const std::shared_ptr<const JwkSet> keys = keys_.load();
    const Jwk* key = keys ? keys->find(*jws->kid) : nullptr;
    if (key == nullptr) {
      r.why = "jwt unknown kid";
      return std::nullopt;
    }
    if (jws->alg != alg_name(key->alg())) {
      r.why = "jwt alg does not match the key (" + std::string(alg_name(key->alg())) + " key)";
      return std::nullopt;
    }
    if (!key->verify(jws->signing_input, jws->signature)) {
      r.why = "jwt bad signature";
      return std::nullopt;
    }
    auto claims = parse_json_object(jws->payload);
    if (!claims) r.why = "jwt claims not an object";
    return claims;
  }
  if (jws->alg != "HS256") {
    r.why = jws->alg == "RS256" || jws->alg == "ES256" || jws->alg == "EdDSA"
                ? "jwt kid missing (asymmetric keys are chosen by kid)"
                : "jwt alg not accepted";
    return std::nullopt;
  }
  if (secret_.empty()) {
    r.why = "jwt alg HS256 not configured";
    return std::nullopt;
  }
  jwt_t* raw = nullptr;
  const int rc =
      jwt_decode(&raw, token.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                 static_cast<int>(secret_.size()));
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  if (rc != 0 || !jwt) {
    r.why = "jwt bad signature";
    return std::nullopt;
  }
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) {
    r.why = "jwt alg not HS256";
    return std::nullopt;
  }
  std::unique_ptr<char, CharFree> grants(jwt_get_grants_json(jwt.get(), nullptr));
  auto claims = grants ? parse_json_object(grants.get()) : std::nullopt;
  if (!claims) r.why = "jwt claims not an object";
  return claims;
}

AuthResult Authenticator::check(const std::optional<core::Auth>& auth,
                                std::int64_t now_unix) const {
  AuthResult r;
  if (!auth || auth->scheme == core::Auth::Scheme::none) {
    if (!allow_none_) {
      r.why = "scheme none not allowed";
      return r;
    }
    r.ok = true;
    r.principal = "anonymous";
    return r;
  }
  if (!jwt_enabled()) {
    r.why = "bearer tokens not configured";
    return r;
  }
  const auto claims = verified_claims(auth->token, r);
  if (claims) check_claims(*claims, now_unix, r);
  return r;
}

void Authenticator::check_claims(const nlohmann::json& claims, std::int64_t now_unix,
                                 AuthResult& r) const {
  const auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty() ||
      sub->get<std::string>().size() > 256) {
    r.why = "jwt sub missing or invalid";
    return;
  }
  const auto exp = claims.find("exp");
  if (exp == claims.end() || !is_int(*exp)) {
    r.why = "jwt exp missing or invalid";
    return;
  }
  if (as_int(*exp) + skew_ <= now_unix) {
    r.why = "jwt expired";
    return;
  }
  if (const auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!is_int(*nbf)) {
      r.why = "jwt nbf invalid";
      return;
    }
    if (as_int(*nbf) - skew_ > now_unix) {
      r.why = "jwt not yet valid";
      return;
    }
  }
  if (!issuer_.empty()) {
    const auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || iss->get<std::string>() != issuer_) {
      r.why = "jwt iss missing or wrong";
      return;
    }
  }
  if (!audience_.empty() && !audience_matches(claims, audience_)) {
    r.why = "jwt aud missing or wrong";
    return;
  }
  if (const auto t = claims.find("targets"); t != claims.end()) {
    if (!t->is_array() || t->size() > 256) {
      r.why = "jwt targets invalid";
      return;
    }
    std::vector<std::string> list;
    for (const auto& e : *t) {
      if (!e.is_string()) {
        r.why = "jwt targets invalid";
        return;
      }
      std::string host;
      std::uint16_t port = 0;
      if (!parse_host_port(e.get<std::string>(), host, port)) {
        r.why = "jwt targets entry invalid";
        return;
      }
      list.push_back(normalise_target(host, port));
    }
    r.targets = std::move(list);
  }
  r.ok = true;
  r.principal = sub->get<std::string>();
}

}  // namespace mana::gateway
