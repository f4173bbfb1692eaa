#include "auth.hpp"

#include <jwt.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>

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
    : allow_none_(cfg.allow_none), skew_(static_cast<std::int64_t>(cfg.clock_skew_s)) {
  if (cfg.jwt_secret_file.empty()) return;
  std::ifstream f(cfg.jwt_secret_file, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read auth.jwt_secret_file " + cfg.jwt_secret_file);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // A trailing newline (as editors and `echo` write) is not part of the key.
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  if (s.size() < 32)
    throw std::runtime_error("auth.jwt_secret_file must hold at least 32 bytes (HS256 key)");
  secret_ = std::move(s);
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
  if (secret_.empty()) {
    r.why = "bearer tokens not configured";
    return r;
  }
  jwt_t* raw = nullptr;
  const int rc =
      jwt_decode(&raw, auth->token.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                 static_cast<int>(secret_.size()));
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  if (rc != 0 || !jwt) {
    r.why = "jwt invalid or bad signature";
    return r;
  }
  if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256) {
    r.why = "jwt alg not HS256";
    return r;
  }
  std::unique_ptr<char, CharFree> grants(jwt_get_grants_json(jwt.get(), nullptr));
  if (!grants) {
    r.why = "jwt has no claims";
    return r;
  }
  const nlohmann::json claims = nlohmann::json::parse(grants.get(), nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) {
    r.why = "jwt claims not an object";
    return r;
  }
  const auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || sub->get<std::string>().empty() ||
      sub->get<std::string>().size() > 256) {
    r.why = "jwt sub missing or invalid";
    return r;
  }
  const auto exp = claims.find("exp");
  if (exp == claims.end() || !is_int(*exp)) {
    r.why = "jwt exp missing or invalid";
    return r;
  }
  if (as_int(*exp) + skew_ <= now_unix) {
    r.why = "jwt expired";
    return r;
  }
  if (const auto nbf = claims.find("nbf"); nbf != claims.end()) {
    if (!is_int(*nbf)) {
      r.why = "jwt nbf invalid";
      return r;
    }
    if (as_int(*nbf) - skew_ > now_unix) {
      r.why = "jwt not yet valid";
      return r;
    }
  }
  if (const auto t = claims.find("targets"); t != claims.end()) {
    if (!t->is_array() || t->size() > 256) {
      r.why = "jwt targets invalid";
      return r;
    }
    std::vector<std::string> list;
    for (const auto& e : *t) {
      if (!e.is_string()) {
        r.why = "jwt targets invalid";
        return r;
      }
      std::string host;
      std::uint16_t port = 0;
      if (!parse_host_port(e.get<std::string>(), host, port)) {
        r.why = "jwt targets entry invalid";
        return r;
      }
      list.push_back(normalise_target(host, port));
    }
    r.targets = std::move(list);
  }
  r.ok = true;
  r.principal = sub->get<std::string>();
  return r;
}

}  // namespace mana::gateway
