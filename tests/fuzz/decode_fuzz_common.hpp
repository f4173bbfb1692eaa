// SPDX-License-Identifier: Apache-2.0
// Shared body of the wire-profile decoder fuzz targets (fuzz_decode_mana_v1.cpp,
// fuzz_decode_lenpfx.cpp, fuzz_decode_json_base64.cpp).
//
// Input: first byte selects the WebSocket message type (bit 0: 0 = text,
// 1 = binary), the rest is the message. The decoder runs with small limits so
// the size checks are reachable. Properties checked (violations trap):
//   * a decode error is a framing error (a row of mana/core/errc.def marked
//     `framing`) with Origin::remote and a detail;
//   * a decoded data frame has a valid channel id and stream;
//   * a decoded frame re-encodes to a message within the limits that decodes
//     to the same frame;
//   * ReEncoding::identical: the profile has one encoding per frame, so
//     re-encoding gives the input bytes; ReEncoding::canonical: the canonical
//     re-encoding is a text message never longer than the input.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <variant>

#include "mana/core/wire_profile.hpp"

namespace mana::fuzz {

namespace core = mana::core;

inline void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

// True for the errors a WireProfile::decode may return: the Errc rows of
// errc.def whose `framing` column is true (indexed by the Errc value).
inline bool is_framing_error(core::Errc e) {
  static constexpr bool framing_rows[] = {
#define MANA_ERRC(name, close_code, group, fatal, framing, summary) framing,
#include "mana/core/errc.def"
  };
  const auto i = static_cast<std::size_t>(e);
  return i < std::size(framing_rows) && framing_rows[i];
}

inline core::OutMessage encode(const core::WireProfile& p, const core::Frame& f) {
  if (const auto* c = std::get_if<core::ControlFrame>(&f)) {
    return p.encode_control(c->json);
  }
  const auto* d = std::get_if<core::DataFrame>(&f);
  return p.encode_data(d->stream, d->id, d->payload);
}

enum class ReEncoding : std::uint8_t { identical, canonical };

// One fuzz input through `profile` (the whole LLVMFuzzerTestOneInput of a decoder target).
inline int run_decoder(const core::WireProfile& profile, ReEncoding re_encoding,
                       const std::uint8_t* data, std::size_t size) {
  using core::MessageType;
  if (size == 0) {
    return 0;
  }
  const MessageType type = (data[0] & 1) != 0 ? MessageType::binary : MessageType::text;
  const core::ByteView message(data + 1, size - 1);
  core::FrameLimits limits;
  limits.max_frame = 2048;
  limits.max_control_json = 512;

  const core::Result<core::Frame> first = profile.decode(type, message, limits);
  if (!first.ok()) {
    check(is_framing_error(first.error().code));
    check(first.error().origin == core::Origin::remote);
    check(!first.error().detail.empty());
    return 0;
  }
  if (const auto* d = std::get_if<core::DataFrame>(&first.value())) {
    check(d->id >= 1 && d->id <= 2147483647);
    check(d->stream == core::Stream::out || d->stream == core::Stream::err);
  }
  const core::OutMessage again = encode(profile, first.value());
  check(again.data.size() <= limits.max_frame);
  if (re_encoding == ReEncoding::identical) {
    check(again.type == type);
    check(core::ByteView(again.data).size() == message.size() &&
          std::equal(again.data.begin(), again.data.end(), message.begin()));
  } else {
    check(again.type == MessageType::text);
    check(again.data.size() <= message.size());
  }
  const core::Result<core::Frame> second =
      profile.decode(again.type, core::ByteView(again.data), limits);
  check(second.ok());
  check(second.value() == first.value());
  return 0;
}

}  // namespace mana::fuzz
