// Basic value types shared by every module of mana::core.
//
// The core never reads a clock: every entry point that depends on time takes a
// Timestamp supplied by the host (steady_clock natively, performance.now() in
// the browser). Timestamps are monotonic nanoseconds from an arbitrary epoch.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace mana::core {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;
using ChannelId = std::uint32_t;

// Largest integer a JSON number may carry exactly (2^53 - 1). Every offset and
// credit value on the wire stays at or below it.
inline constexpr std::uint64_t max_json_integer = (std::uint64_t{1} << 53) - 1;

struct Duration {
  std::int64_t ns = 0;

  static constexpr Duration from_ns(std::int64_t v) { return Duration{v}; }
  static constexpr Duration from_us(std::int64_t v) { return Duration{v * 1000}; }
  static constexpr Duration from_ms(std::int64_t v) { return Duration{v * 1000000}; }
  static constexpr Duration from_s(std::int64_t v) { return Duration{v * 1000000000}; }
  [[nodiscard]] constexpr std::int64_t ms() const { return ns / 1000000; }
  [[nodiscard]] constexpr std::int64_t us() const { return ns / 1000; }

  friend constexpr auto operator<=>(Duration, Duration) = default;
  friend constexpr Duration operator+(Duration a, Duration b) { return Duration{a.ns + b.ns}; }
  friend constexpr Duration operator-(Duration a, Duration b) { return Duration{a.ns - b.ns}; }
  friend constexpr Duration operator*(Duration a, std::int64_t k) { return Duration{a.ns * k}; }
};

struct Timestamp {
  std::uint64_t ns = 0;

  static constexpr Timestamp from_ms(std::uint64_t v) { return Timestamp{v * 1000000}; }

  friend constexpr auto operator<=>(Timestamp, Timestamp) = default;
  friend constexpr Timestamp operator+(Timestamp t, Duration d) {
    return Timestamp{t.ns + static_cast<std::uint64_t>(d.ns)};
  }
  // Saturates at zero: a timestamp earlier than `b` yields a zero duration.
  friend constexpr Duration operator-(Timestamp a, Timestamp b) {
    return Duration{a.ns >= b.ns ? static_cast<std::int64_t>(a.ns - b.ns) : 0};
  }
};

// Data streams of a channel. stdout and stderr share one credit window.
enum class Stream : std::uint8_t { out = 0x01, err = 0x02 };

// Kind of a WebSocket message as seen by the host's WebSocket stack.
enum class MessageType : std::uint8_t { text, binary, close };

}  // namespace mana::core
