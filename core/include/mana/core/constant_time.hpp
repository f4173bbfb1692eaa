// Constant-time comparison for secrets (resume tokens): the time taken
// depends only on the lengths, never on where the inputs differ.
#pragma once

#include <cstddef>
#include <string_view>

namespace mana::core {

[[nodiscard]] inline bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  const std::size_t n = a.size() > b.size() ? a.size() : b.size();
  unsigned diff = static_cast<unsigned>(a.size() ^ b.size());
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned ca = i < a.size() ? static_cast<unsigned char>(a[i]) : 0U;
    const unsigned cb = i < b.size() ? static_cast<unsigned char>(b[i]) : 0U;
    diff |= ca ^ cb;
  }
  return diff == 0;
}

}  // namespace mana::core
