#include "resume.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace mana::gateway {

ResumeTable::ResumeTable() {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
}

std::string ResumeTable::new_token() {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::array<std::uint8_t, 16> raw{};
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1)
    throw std::runtime_error("RAND_bytes failed");
  // base64url, no padding: 16 bytes -> 22 characters.
  std::string out;
  out.reserve(22);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::uint8_t b : raw) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::string ResumeTable::key_of(const std::string& token) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(token.data()), token.size(), md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

void ResumeTable::add(const std::string& token, const std::shared_ptr<Session>& s) {
  const std::string k = key_of(token);
  by_hash_[k] = s;
  auto& list = by_session_[s.get()];
  list.push_back(k);
  while (list.size() > 2) {
    by_hash_.erase(list.front());
    list.pop_front();
  }
}

void ResumeTable::replace(const std::shared_ptr<Session>& s, const std::string& current,
                          const std::string& previous) {
  remove(s.get());
  if (!previous.empty()) add(previous, s);
  add(current, s);
}

std::shared_ptr<Session> ResumeTable::find(const std::string& token) const {
  auto it = by_hash_.find(key_of(token));
  if (it == by_hash_.end()) return nullptr;
  return it->second.lock();
}

void ResumeTable::remove(const Session* s) {
  auto it = by_session_.find(s);
  if (it == by_session_.end()) return;
  for (const auto& k : it->second)
    by_hash_.erase(k);
  by_session_.erase(it);
}

}  // namespace mana::gateway
