// Strict parsing of a JWS in compact serialisation (RFC 7515 §7.1), the form of every JWT the
// gateway accepts: exactly three base64url parts without padding, a JSON object header with a
// string `alg` and an optional string `kid`, no `crit` (no extension is understood). Keys and
// signature checks live in jwk.hpp; claims in auth.cpp. Nothing here logs or keeps the token.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mana::gateway {

// Largest token accepted (the core bounds hello.auth.token to the same 8192 characters).
inline constexpr std::size_t max_token_bytes = 8192;
// Largest decoded JWS header; header members the gateway reads are short.
inline constexpr std::size_t max_jws_header_bytes = 1024;
// Longest `kid`, in the token and in the JWKS.
inline constexpr std::size_t max_kid_bytes = 128;

// Decodes unpadded base64url (RFC 4648 §5). nullopt on padding, any character outside
// [A-Za-z0-9_-], or a length no encoding has.
std::optional<std::string> base64url_decode(std::string_view in);

// Parses `text` as a JSON object whose members have distinct names (a duplicate would let two
// readers see two different values). nullopt on anything else.
std::optional<nlohmann::json> parse_json_object(std::string_view text);

struct JwsToken {
  std::string alg;                 // header `alg`, as sent
  std::optional<std::string> kid;  // header `kid`: 1..max_kid_bytes characters
  std::string signing_input;       // "header.payload" as sent: what the signature covers
  std::string payload;             // decoded payload (JSON text, not yet parsed)
  std::string signature;           // decoded signature bytes
};

// Splits and decodes `token`. On failure returns nullopt and sets `why` (never containing the
// token or any part of it).
std::optional<JwsToken> parse_jws(std::string_view token, std::string& why);

}  // namespace mana::gateway
