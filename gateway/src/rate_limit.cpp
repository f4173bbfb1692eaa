#include "rate_limit.hpp"

#include <algorithm>

namespace mana::gateway {

namespace {
constexpr std::size_t prune_threshold = 4096;
}  // namespace

RateLimiter::RateLimiter(std::uint32_t rate_per_second, std::uint32_t burst) noexcept
    : rate_(static_cast<double>(rate_per_second)), burst_(static_cast<double>(burst)) {}

double RateLimiter::level(const Bucket& b, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - b.last).count();
  return std::min(burst_, b.tokens + std::max(0.0, elapsed) * rate_);
}

bool RateLimiter::take(const std::string& key, Clock::time_point now) {
  auto it = buckets_.find(key);
  if (it == buckets_.end()) {
    if (buckets_.size() >= prune_threshold) prune(now);
    it = buckets_.emplace(key, Bucket{burst_, now}).first;
  }
  Bucket& b = it->second;
  b.tokens = level(b, now);
  b.last = now;
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

bool RateLimiter::has_token(const std::string& key, Clock::time_point now) const {
  auto it = buckets_.find(key);
  return it == buckets_.end() || level(it->second, now) >= 1.0;
}

void RateLimiter::prune(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    if (level(it->second, now) >= burst_) {
      it = buckets_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace mana::gateway
