// SPDX-License-Identifier: Apache-2.0
// Wire profile mana.v1 (docs/PROTOCOL.md, "Wire profiles"): control frames are
// text messages, data frames binary messages [stream u8][id u32 BE][payload].
// The decoding rules all profiles share are described in wire_profile.cpp.
#include <cstdint>
#include <string>
#include <utility>

#include "mana/core/wire_profile.hpp"
#include "wire_profile_detail.hpp"

namespace mana::core {
namespace {

using namespace wire_detail;

// mana.v1 data header: [stream u8][id u32 BE].
constexpr std::size_t mana_header_size = 5;

class ManaV1Profile final : public WireProfile {
 public:
  static constexpr std::string_view name = "mana.v1";

  [[nodiscard]] std::string_view id() const noexcept override { return name; }

  [[nodiscard]] Result<Frame> decode(MessageType type, ByteView message,
                                     const FrameLimits& limits) const override {
    if (auto r = check_frame_size(name, message, limits); !r) {
      return std::move(r).error();
    }
    if (type == MessageType::text) {
      return make_control(name, message, limits);  // parsed later by messages.hpp
    }
    if (type != MessageType::binary) {
      return remote_error(Errc::wrong_message_type, name,
                          std::string("unexpected ") + message_type_name(type) + " message");
    }
    if (message.size() < mana_header_size) {
      return remote_error(Errc::truncated_frame, name,
                          "binary message of " + to_dec(message.size()) +
                              " bytes is shorter than the 5-byte data header");
    }
    const std::uint8_t stream = message[0];
    if (stream != static_cast<std::uint8_t>(Stream::out) &&
        stream != static_cast<std::uint8_t>(Stream::err)) {
      return remote_error(Errc::unknown_stream, name,
                          "reserved stream byte " + to_hex_byte(stream));
    }
    const std::uint32_t id = read_u32be(message.data() + 1);
    if (!valid_channel_id(id)) {
      return remote_error(Errc::out_of_range, name,
                          "data channel id " + to_dec(id) + " outside 1..2147483647");
    }
    DataFrame frame;
    frame.stream = static_cast<Stream>(stream);
    frame.id = id;
    frame.payload.assign(message.begin() + mana_header_size, message.end());
    return Frame{std::move(frame)};
  }

  [[nodiscard]] OutMessage encode_control(std::string_view json_text) const override {
    return text_message(json_text);
  }

  [[nodiscard]] OutMessage encode_data(Stream stream, ChannelId id,
                                       ByteView payload) const override {
    OutMessage m = header(stream, id, mana_header_size + payload.size());
    m.data.insert(m.data.end(), payload.begin(), payload.end());
    return m;
  }

  [[nodiscard]] std::size_t max_payload(std::size_t max_frame) const noexcept override {
    return max_frame > mana_header_size ? max_frame - mana_header_size : 0;
  }

  [[nodiscard]] bool raw_payload() const noexcept override { return true; }

  [[nodiscard]] OutMessage encode_data_header(Stream stream, ChannelId id,
                                              std::size_t /*payload_size*/) const override {
    return header(stream, id, mana_header_size);
  }

 private:
  // The 5-byte data header in a buffer with room for `reserve` bytes (reserve
  // + insert: nothing is zero-filled and then overwritten).
  static OutMessage header(Stream stream, ChannelId id, std::size_t reserve) {
    OutMessage m;
    m.type = MessageType::binary;
    m.data.reserve(reserve);
    m.data.resize(mana_header_size);  // (insert from a std::array trips g++-12 -O3 warnings)
    m.data[0] = static_cast<std::uint8_t>(stream);
    write_u32be(m.data.data() + 1, id);
    return m;
  }
};

}  // namespace

const WireProfile& mana_v1_profile() noexcept {
  static const ManaV1Profile profile;
  return profile;
}

}  // namespace mana::core
