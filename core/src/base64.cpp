// SPDX-License-Identifier: Apache-2.0
// Standard base64 (RFC 4648, with padding) for the json-base64.v1 wire profile:
// base64_encode / base64_decode (wire_profile.hpp) and the encoder the profile
// writes into its own buffer with (wire_detail::base64_encode_to).
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "mana/core/wire_profile.hpp"
#include "wire_profile_detail.hpp"

namespace mana::core {
namespace {

constexpr std::string_view base64_alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// 0..63 for alphabet characters, 0xff for everything else ('=' included).
constexpr std::array<std::uint8_t, 256> make_base64_table() {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) {
    v = 0xff;
  }
  for (std::size_t i = 0; i < base64_alphabet.size(); ++i) {
    table[static_cast<unsigned char>(base64_alphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}
constexpr std::array<std::uint8_t, 256> base64_table = make_base64_table();

}  // namespace

// Writes base64_encoded_size(data.size()) characters to `out`.
void wire_detail::base64_encode_to(ByteView data, std::uint8_t* out) {
  const std::size_t n = data.size();
  std::size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                            std::uint32_t{data[i + 2]};
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 6) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[v & 0x3f]);
  }
  const std::size_t rest = n - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{data[i]} << 16;
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = '=';
    *out++ = '=';
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 18) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 12) & 0x3f]);
    *out++ = static_cast<std::uint8_t>(base64_alphabet[(v >> 6) & 0x3f]);
    *out++ = '=';
  }
}

using wire_detail::base64_encoded_size;
using wire_detail::to_dec;

std::string base64_encode(ByteView data) {
  std::string out(base64_encoded_size(data.size()), '\0');
  wire_detail::base64_encode_to(data, reinterpret_cast<std::uint8_t*>(out.data()));
  return out;
}

// Errors (Origin::remote, it decodes peer input): bad_base64 when the length
// is not a multiple of 4, a character is outside the standard alphabet, '='
// appears anywhere but as one or two final characters, or the bits left over
// before the padding are not zero (non-canonical encoding).
Result<Bytes> base64_decode(std::string_view text) {
  const auto fail = [](std::string what) {
    return make_error(Errc::bad_base64, Origin::remote, "base64: " + std::move(what));
  };
  if (text.size() % 4 != 0) {
    return fail("length " + to_dec(text.size()) + " is not a multiple of 4");
  }
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') {
    pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
  }
  const std::size_t body = text.size() - pad;  // characters before the padding
  Bytes out;
  out.reserve(text.size() / 4 * 3 - pad);
  std::uint32_t acc = 0;
  for (std::size_t i = 0; i < body; ++i) {
    const std::uint8_t v = base64_table[static_cast<unsigned char>(text[i])];
    if (v == 0xff) {
      return fail("invalid character at offset " + to_dec(i));
    }
    acc = (acc << 6) | v;
    if (i % 4 == 3) {
      out.push_back(static_cast<std::uint8_t>(acc >> 16));
      out.push_back(static_cast<std::uint8_t>(acc >> 8));
      out.push_back(static_cast<std::uint8_t>(acc));
      acc = 0;
    }
  }
  if (pad == 2) {  // "xx==": 12 bits, 8 used
    if ((acc & 0x0f) != 0) {
      return fail("non-zero trailing bits before padding");
    }
    out.push_back(static_cast<std::uint8_t>(acc >> 4));
  } else if (pad == 1) {  // "xxx=": 18 bits, 16 used
    if ((acc & 0x03) != 0) {
      return fail("non-zero trailing bits before padding");
    }
    out.push_back(static_cast<std::uint8_t>(acc >> 10));
    out.push_back(static_cast<std::uint8_t>(acc >> 2));
  }
  return out;
}

}  // namespace mana::core
