// SPDX-License-Identifier: Apache-2.0
#include "mana/host/clock.hpp"

namespace mana::host {

core::Timestamp mono_now() noexcept {
  return core::Timestamp{
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now().time_since_epoch())
                                     .count())};
}

std::chrono::steady_clock::time_point to_steady(core::Timestamp t) noexcept {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(t.ns)));
}

std::int64_t unix_now() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace mana::host
