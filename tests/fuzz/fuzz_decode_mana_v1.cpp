// libFuzzer target: mana.v1 decoder (tests/fuzz/corpus/fuzz_decode_mana_v1/ holds the seeds).
//
// Input: first byte selects the WebSocket message type (bit 0: 0 = text,
// 1 = binary), the rest is the message. The decoder runs with small limits so
// the size checks are reachable. Properties checked (violations trap):
//   * a decode error is a framing error with Origin::remote and a detail;
//   * a decoded frame re-encodes to a message within the limits that decodes
//     to the same frame;
//   * this profile has one encoding per frame: re-encoding gives the input bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <variant>

#include "mana/core/wire_profile.hpp"

namespace {

using namespace mana::core;

void check(bool ok) {
  if (!ok) {
    __builtin_trap();
  }
}

bool is_framing_error(Errc e) {
  switch (e) {
    case Errc::truncated_frame:
    case Errc::bad_length:
    case Errc::unknown_stream:
    case Errc::wrong_message_type:
    case Errc::bad_base64:
    case Errc::frame_too_large:
    case Errc::control_too_large:
    case Errc::bad_json:
    case Errc::json_too_deep:
    case Errc::missing_field:
    case Errc::wrong_type:
    case Errc::out_of_range:
      return true;
    default:
      return false;
  }
}

OutMessage encode(const WireProfile& p, const Frame& f) {
  if (const auto* c = std::get_if<ControlFrame>(&f)) {
    return p.encode_control(c->json);
  }
  const auto* d = std::get_if<DataFrame>(&f);
  return p.encode_data(d->stream, d->id, d->payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const WireProfile& profile = mana_v1_profile();
  const MessageType type = (data[0] & 1) != 0 ? MessageType::binary : MessageType::text;
  const ByteView message(data + 1, size - 1);
  FrameLimits limits;
  limits.max_frame = 2048;
  limits.max_control_json = 512;

  const Result<Frame> first = profile.decode(type, message, limits);
  if (!first.ok()) {
    check(is_framing_error(first.error().code));
    check(first.error().origin == Origin::remote);
    check(!first.error().detail.empty());
    return 0;
  }
  if (const auto* d = std::get_if<DataFrame>(&first.value())) {
    check(d->id >= 1 && d->id <= 2147483647);
    check(d->stream == Stream::out || d->stream == Stream::err);
  }
  const OutMessage again = encode(profile, first.value());
  check(again.data.size() <= limits.max_frame);
  check(again.type == type);
  check(ByteView(again.data).size() == message.size() &&
        std::equal(again.data.begin(), again.data.end(), message.begin()));
  const Result<Frame> second = profile.decode(again.type, ByteView(again.data), limits);
  check(second.ok());
  check(second.value() == first.value());
  return 0;
}
