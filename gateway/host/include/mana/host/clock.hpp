// SPDX-License-Identifier: Apache-2.0
// Time for the core, read by the host: the core never reads a clock (docs/architecture.md, the
// sans-I/O contract). Shared by mana-gateway, mana-proxy and mana-bench.
#pragma once

#include <chrono>
#include <cstdint>

#include "mana/core/types.hpp"

namespace mana::host {

// Monotonic time for the core: steady_clock in nanoseconds since its epoch.
core::Timestamp mono_now() noexcept;

// The steady_clock time point of a core deadline (next_timeout()), for Asio timers.
std::chrono::steady_clock::time_point to_steady(core::Timestamp t) noexcept;

// Wall-clock seconds since the Unix epoch (JWT exp / nbf / iat checks).
std::int64_t unix_now() noexcept;

}  // namespace mana::host
