// Per-key token buckets (the key is the client IP address): channel opens, pings and failed
// resume attempts are limited per address across all of its connections. Single-threaded.
//
// Memory stays bounded: a bucket that has refilled completely carries no information and is
// dropped by prune(), which runs whenever the table grows past a threshold.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace mana::gateway {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  RateLimiter(std::uint32_t rate_per_second, std::uint32_t burst) noexcept;

  // Takes one token for `key`; false when its bucket is empty (the caller refuses).
  bool take(const std::string& key, Clock::time_point now);
  // True when `key` has at least one token (nothing is taken).
  [[nodiscard]] bool has_token(const std::string& key, Clock::time_point now) const;
  [[nodiscard]] std::size_t size() const noexcept { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  [[nodiscard]] double level(const Bucket& b, Clock::time_point now) const;
  void prune(Clock::time_point now);

  double rate_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

// The per-IP limits of one gateway process ([rate] in the configuration).
struct RateLimits {
  RateLimiter opens;            // channel opens
  RateLimiter pings;            // pings from clients
  RateLimiter resume_failures;  // failed resume attempts (checked before each resume)
};

}  // namespace mana::gateway
