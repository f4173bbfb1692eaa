// SPDX-License-Identifier: Apache-2.0
#include "free_budget.hpp"

#include <algorithm>

namespace mana::gateway {

FreeMessageBudget::FreeMessageBudget(Limits limits, core::Timestamp now) noexcept
    : rate_per_ns_(static_cast<double>(limits.rate) / 1e9),
      burst_(static_cast<double>(limits.burst)),
      per_byte_(1.0 / static_cast<double>(std::max<std::uint32_t>(1, limits.refill_bytes))),
      tokens_(burst_),
      last_(now) {}

double FreeMessageBudget::tokens(core::Timestamp now) const noexcept {
  // A clock that went backwards adds nothing (Timestamp subtraction saturates at zero).
  const auto elapsed = static_cast<double>((now - last_).ns);
  return std::min(burst_, tokens_ + elapsed * rate_per_ns_);
}

void FreeMessageBudget::refill(std::uint64_t payload_bytes) noexcept {
  tokens_ = std::min(burst_, tokens_ + static_cast<double>(payload_bytes) * per_byte_);
}

bool FreeMessageBudget::take(core::Timestamp now) noexcept {
  tokens_ = tokens(now);
  if (now > last_) last_ = now;
  if (tokens_ < 1.0) return false;
  tokens_ -= 1.0;
  return true;
}

}  // namespace mana::gateway
