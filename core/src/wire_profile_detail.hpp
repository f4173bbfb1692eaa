// SPDX-License-Identifier: Apache-2.0
// Internal to mana::core: what the wire profile files (wire_profile*.cpp, base64.cpp) share.
// Not installed, not part of the public API (core/include/mana/core/wire_profile.hpp is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "mana/core/wire_profile.hpp"

namespace mana::core::wire_detail {

inline constexpr std::uint32_t max_channel_id = 2147483647;  // 2^31 - 1
inline constexpr std::size_t id_max_digits = 10;             // digits of max_channel_id

// Decimal text of v; "0x" and two lowercase hex digits of b.
std::string to_dec(std::uint64_t v);
std::string to_hex_byte(std::uint8_t b);

// make_error(code, Origin::remote, "<profile>: <what>").
Error remote_error(Errc code, std::string_view profile, std::string_view what);

inline std::uint32_t read_u32be(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

inline void write_u32be(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v >> 24);
  p[1] = static_cast<std::uint8_t>(v >> 16);
  p[2] = static_cast<std::uint8_t>(v >> 8);
  p[3] = static_cast<std::uint8_t>(v);
}

inline bool valid_channel_id(std::uint64_t id) {
  return id >= 1 && id <= max_channel_id;
}

const char* message_type_name(MessageType type);

// Shared first check of every decoder: the whole message against max_frame.
Result<void> check_frame_size(std::string_view profile, ByteView message,
                              const FrameLimits& limits);

// A control frame holding a copy of json_text, or control_too_large past
// limits.max_control_json.
Result<Frame> make_control(std::string_view profile, ByteView json_text, const FrameLimits& limits);

// A text message holding a copy of text.
OutMessage text_message(std::string_view text);

// ---- base64 (base64.cpp) ---------------------------------------------------

constexpr std::size_t base64_encoded_size(std::size_t n) {
  return (n + 2) / 3 * 4;
}

// Writes base64_encoded_size(data.size()) characters to `out`.
void base64_encode_to(ByteView data, std::uint8_t* out);

}  // namespace mana::core::wire_detail
