// mana-sim's stream bookkeeping: each directed stream of a channel is
// generated from (seed, channel, kind, offset) so that the receiver checks
// every byte and both ends hash what they sent and received.
#pragma once

#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "mana/core/types.hpp"

namespace mana::sim {

using core::Bytes;
using core::ChannelId;

inline std::uint64_t splitmix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { reset(); }
  void reset() { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const std::uint8_t* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    std::string s;
    char buf[3];
    for (unsigned i = 0; i < len; ++i) {
      std::snprintf(buf, sizeof buf, "%02x", md[i]);
      s += buf;
    }
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// One directed byte stream of one channel: generated deterministically from
// (seed, channel, kind, offset) so the receiver can check every byte.
struct StreamTrack {
  std::uint64_t key = 0;
  std::uint64_t total = 0;
  std::uint64_t written = 0;
  std::uint64_t received = 0;
  std::uint64_t mismatched = 0;
  std::uint64_t excess = 0;
  std::uint64_t first_mismatch = 0;
  Sha256 sent_hash;
  Sha256 recv_hash;

  [[nodiscard]] std::uint8_t byte_at(std::uint64_t off) const {
    return static_cast<std::uint8_t>(splitmix(key ^ (off >> 3)) >> ((off & 7) * 8));
  }
  void fill(std::uint8_t* p, std::size_t n, std::uint64_t off) const {
    for (std::size_t i = 0; i < n; ++i)
      p[i] = byte_at(off + i);
  }
  void on_receive(const Bytes& data) {
    for (std::uint8_t b : data) {
      if (received >= total) {
        ++excess;
        continue;
      }
      if (b != byte_at(received)) {
        if (mismatched == 0) {
          first_mismatch = received;
          if (std::getenv("SIM_TRACE") != nullptr)
            std::fprintf(stderr, "  first mismatch key=%llx off=%llu got=%d want=%d chunk=%zu\n",
                         static_cast<unsigned long long>(key),
                         static_cast<unsigned long long>(received), b, byte_at(received),
                         data.size());
        }
        ++mismatched;
      }
      ++received;
    }
    recv_hash.update(data.data(), data.size());
  }
};

struct ChannelPlan {
  ChannelId id = 0;
  std::unique_ptr<StreamTrack> up;        // client -> server
  std::unique_ptr<StreamTrack> down_out;  // server -> client stdout
  std::unique_ptr<StreamTrack> down_err;  // server -> client stderr
  std::uint64_t client_unconsumed = 0;
  std::uint64_t server_unconsumed = 0;
  bool opened = false;
  bool close_sent = false;
  bool client_freed = false;
  bool server_freed = false;
  bool server_accepted = false;
  [[nodiscard]] bool complete() const {
    return up->received == up->total && down_out->received == down_out->total &&
           down_err->received == down_err->total;
  }
};

}  // namespace mana::sim
