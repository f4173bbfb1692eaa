// SPDX-License-Identifier: Apache-2.0
// Wire profile lenpfx.v1 (docs/PROTOCOL.md, "Wire profiles"): every frame is a
// binary envelope [length u32 BE][kind u8][id u32 BE][body]; kind 0x10 is a
// control frame (id 0, body = JSON text), kinds 1/2 are data (stdout/stderr).
// The decoding rules all profiles share are described in wire_profile.cpp.
#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "mana/core/wire_profile.hpp"
#include "wire_profile_detail.hpp"

namespace mana::core {
namespace {

using namespace wire_detail;

// lenpfx.v1 envelope header: [length u32 BE][kind u8][id u32 BE].
constexpr std::size_t lenpfx_length_size = 4;
constexpr std::size_t lenpfx_header_size = 9;
constexpr std::uint8_t lenpfx_kind_control = 0x10;
// Largest whole lenpfx.v1 message: the length field counts at most 2^32 - 1 bytes.
constexpr std::uint64_t lenpfx_max_message =
    std::uint64_t{std::numeric_limits<std::uint32_t>::max()} + lenpfx_length_size;

class LenpfxV1Profile final : public WireProfile {
 public:
  static constexpr std::string_view name = "lenpfx.v1";

  [[nodiscard]] std::string_view id() const noexcept override { return name; }

  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    if (auto r = check_frame_size(name, message, limits); !r) {
      return std::move(r).error();
    }
    if (type != MessageType::binary) {
      return remote_error(
          Errc::wrong_message_type, name,
          std::string(message_type_name(type)) + " message (every frame is a binary envelope)");
    }
    // Shorter than the fixed header is truncated_frame whatever the length
    // field says; a consistent envelope with length < 5 is always shorter.
    if (message.size() < lenpfx_header_size) {
      return remote_error(Errc::truncated_frame, name,
                          "message of " + to_dec(message.size()) +
                              " bytes is shorter than the 9-byte envelope header");
    }
    const std::uint32_t length = read_u32be(message.data());
    if (std::uint64_t{length} != std::uint64_t{message.size()} - lenpfx_length_size) {
      return remote_error(Errc::bad_length, name,
                          "length field " + to_dec(length) + " but " +
                              to_dec(message.size() - lenpfx_length_size) + " bytes follow it");
    }
    const std::uint8_t kind = message[4];
    const std::uint32_t id = read_u32be(message.data() + 5);
    const ByteView body = message.subspan(lenpfx_header_size);
    if (kind == lenpfx_kind_control) {
      // A control envelope's id field must be 0. A non-zero id is a field
      // value outside its allowed range, so it is out_of_range (close 4014),
      // not bad_length (which is about the length field only).
      if (id != 0) {
        return remote_error(Errc::out_of_range, name,
                            "control envelope with id " + to_dec(id) + " (must be 0)");
      }
      return make_control(name, body, limits);
    }
    if (kind != static_cast<std::uint8_t>(Stream::out) &&
        kind != static_cast<std::uint8_t>(Stream::err)) {
      return remote_error(Errc::unknown_stream, name,
                          "reserved envelope kind " + to_hex_byte(kind));
    }
    if (!valid_channel_id(id)) {
      return remote_error(Errc::out_of_range, name,
                          "data channel id " + to_dec(id) + " outside 1..2147483647");
    }
    DataFrame frame;
    frame.stream = static_cast<Stream>(kind);
    frame.id = id;
    frame.payload.assign(body.begin(), body.end());
    return Frame{std::move(frame)};
  }

  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return envelope(
        lenpfx_kind_control, 0,
        ByteView(reinterpret_cast<const std::uint8_t*>(json_text.data()), json_text.size()));
  }

  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    return envelope(static_cast<std::uint8_t>(stream), id, payload);
  }

  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    const std::uint64_t frame = std::min<std::uint64_t>(max_frame, lenpfx_max_message);
    return frame > lenpfx_header_size ? static_cast<std::size_t>(frame - lenpfx_header_size) : 0;
  }

  [[nodiscard]] bool raw_payload() const noexcept override { return true; }

  [[nodiscard]] OutMessage encode_data_header(Stream stream, ChannelId id,
                                              std::size_t payload_size) const override {
    return envelope_header(static_cast<std::uint8_t>(stream), id, payload_size, 0);
  }

 private:
  // Precondition: body.size() <= 2^32 - 6 (the length field is 32 bits).
  static OutMessage envelope(std::uint8_t kind, std::uint32_t id, ByteView body) {
    OutMessage m = envelope_header(kind, id, body.size(), body.size());
    m.data.insert(m.data.end(), body.begin(), body.end());
    return m;
  }

  // The 9-byte header of an envelope whose body has `body_size` bytes (the
  // length field counts them), in a buffer with room for `extra` more bytes.
  static OutMessage envelope_header(std::uint8_t kind, std::uint32_t id, std::size_t body_size,
                                    std::size_t extra) {
    assert(std::uint64_t{body_size} + lenpfx_header_size <= lenpfx_max_message);
    OutMessage m;
    m.type = MessageType::binary;
    m.data.reserve(lenpfx_header_size + extra);
    m.data.resize(lenpfx_header_size);  // (insert from a std::array trips g++-12 -O3 warnings)
    write_u32be(m.data.data(),
                static_cast<std::uint32_t>(body_size + lenpfx_header_size - lenpfx_length_size));
    m.data[4] = kind;
    write_u32be(m.data.data() + 5, id);
    return m;
  }
};

}  // namespace

const WireProfile& lenpfx_v1_profile() noexcept {
  static const LenpfxV1Profile profile;
  return profile;
}

}  // namespace mana::core
