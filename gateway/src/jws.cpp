#include "jws.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <set>
#include <vector>

namespace mana::gateway {

namespace {

bool is_b64url_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Standard base64 (RFC 4648 §4) of `in` via OpenSSL, turned into unpadded base64url.
std::string base64url_encode(const std::string& in) {
  std::vector<unsigned char> out(((in.size() + 2) / 3) * 4 + 1);
  const int n = EVP_EncodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  std::string s(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
  while (!s.empty() && s.back() == '=')
    s.pop_back();
  std::replace(s.begin(), s.end(), '+', '-');
  std::replace(s.begin(), s.end(), '/', '_');
  return s;
}

}  // namespace

std::optional<std::string> base64url_decode(std::string_view in) {
  // A length of 1 mod 4 encodes no byte string; every other character is refused up front
  // (EVP_DecodeBlock itself would skip whitespace).
  if (in.size() % 4 == 1 || !std::all_of(in.begin(), in.end(), is_b64url_char)) return std::nullopt;
  std::string std64(in);
  std::replace(std64.begin(), std64.end(), '-', '+');
  std::replace(std64.begin(), std64.end(), '_', '/');
  const std::size_t pad = (4 - in.size() % 4) % 4;
  std64.append(pad, '=');
  std::string out((std64.size() / 4) * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(std64.data()),
                                static_cast<int>(std64.size()));
  if (n < 0 || static_cast<std::size_t>(n) != out.size()) return std::nullopt;
  out.resize(out.size() - pad);
  // Canonical form only: the unused low bits of the last character must be zero, so that one
  // byte string has exactly one encoding.
  if (base64url_encode(out) != in) return std::nullopt;
  return out;
}

std::optional<nlohmann::json> parse_json_object(std::string_view text) {
  std::vector<std::set<std::string>> names;  // member names seen, per open object
  bool duplicate = false;
  using Event = nlohmann::json::parse_event_t;
  const auto cb = [&](int /*depth*/, Event ev, nlohmann::json& parsed) {
    if (ev == Event::object_start) names.emplace_back();
    if (ev == Event::object_end && !names.empty()) names.pop_back();
    if (ev == Event::key && !names.empty() &&
        !names.back().insert(parsed.get<std::string>()).second)
      duplicate = true;
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), cb, false);
  if (duplicate || j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::optional<JwsToken> parse_jws(std::string_view token, std::string& why) {
  if (token.size() > max_token_bytes) {
    why = "jwt too large";
    return std::nullopt;
  }
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    why = "jwt not three parts";
    return std::nullopt;
  }
  const std::string_view head64 = token.substr(0, dot1);
  if (head64.size() > (max_jws_header_bytes / 3 + 1) * 4) {
    why = "jwt header too large";
    return std::nullopt;
  }
  const auto head = base64url_decode(head64);
  auto payload = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!head || !payload || !signature) {
    why = "jwt not base64url";
    return std::nullopt;
  }
  const auto header = parse_json_object(*head);
  if (!header) {
    why = "jwt header not a JSON object";
    return std::nullopt;
  }
  JwsToken t;
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string()) {
    why = "jwt alg missing";
    return std::nullopt;
  }
  t.alg = alg->get<std::string>();
  if (const auto kid = header->find("kid"); kid != header->end()) {
    if (!kid->is_string() || kid->get<std::string>().empty() ||
        kid->get<std::string>().size() > max_kid_bytes) {
      why = "jwt kid invalid";
      return std::nullopt;
    }
    t.kid = kid->get<std::string>();
  }
  if (header->contains("crit")) {
    why = "jwt crit header not supported";
    return std::nullopt;
  }
  t.signing_input = std::string(token.substr(0, dot2));
  t.payload = std::move(*payload);
  t.signature = std::move(*signature);
  return t;
}

}  // namespace mana::gateway
