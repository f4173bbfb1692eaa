// Resume tokens: 128-bit tokens from OpenSSL's CSPRNG (RAND_bytes), base64url without padding,
// and the table that maps a token to its session.
//
// The table is keyed by HMAC-SHA256(process-random key, token), so a lookup never compares
// secrets byte by byte; the session then confirms with ServerSession::matches_token (constant
// time). At most two tokens per session are indexed (current and the one a resume just used,
// which ServerSession keeps valid until the client's first frame). Tokens are never logged.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "mana/core/small_queue.hpp"

namespace mana::gateway {

class Session;

class ResumeTable {
 public:
  ResumeTable();  // throws std::runtime_error if the CSPRNG fails

  // A fresh token (22 chars of [A-Za-z0-9_-], 128 bits). Throws if the CSPRNG fails.
  static std::string new_token();

  void add(const std::string& token, const std::shared_ptr<Session>& s);
  // After a resume: the session's tokens become exactly `current` and, when not empty,
  // `previous` (the token the resume used, valid until the client shows it holds `current`).
  // Keeping only "the last two issued" would drop the one token a client holds after two
  // resume handshakes in a row were lost.
  void replace(const std::shared_ptr<Session>& s, const std::string& current,
               const std::string& previous);
  // The session a token was issued to (still to be confirmed with matches_token), or null.
  [[nodiscard]] std::shared_ptr<Session> find(const std::string& token) const;
  void remove(const Session* s);
  [[nodiscard]] std::size_t size() const noexcept { return by_hash_.size(); }

 private:
  [[nodiscard]] std::string key_of(const std::string& token) const;

  std::array<std::uint8_t, 32> key_{};
  std::map<std::string, std::weak_ptr<Session>> by_hash_;
  std::map<const Session*, core::SmallQueue<std::string>> by_session_;
};

}  // namespace mana::gateway
