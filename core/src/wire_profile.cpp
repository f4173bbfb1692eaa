// Wire profiles: mana.v1, json-base64.v1, lenpfx.v1 (docs/PROTOCOL.md, "Wire profiles").
//
// Decoding rules shared by the three built-in profiles:
//   * every size is checked against FrameLimits before anything is allocated
//     (message > max_frame -> frame_too_large, control JSON text >
//     max_control_json -> control_too_large); the only allocations are the
//     returned frame and, for json-base64.v1, the parser's copy of string
//     values, both bounded by the (already checked) message size;
//   * data frames must name a channel id in 1..2147483647 (out_of_range
//     otherwise, close 4014), in every profile, so that no profile accepts a
//     frame the others cannot represent;
//   * every decode error has Origin::remote and a detail naming the profile and
//     what was wrong; details never contain payload bytes. Besides the errors
//     listed in wire_profile.hpp, decoders return out_of_range (channel id,
//     lenpfx.v1 control id) and, for json-base64.v1 data frames,
//     missing_field / wrong_type / json_too_deep (all close 4014).
// Control JSON is not parsed here (messages.hpp does that), except that
// json-base64.v1 must parse every text message to tell data from control.
// Encoders never fail: senders keep control JSON within the peer's limits and
// split data with encode_data_split / max_payload.
//
// This file: the helpers the profiles share (wire_profile_detail.hpp), the
// ProfileRegistry, OutMessage and encode_data_split. One file per profile:
// wire_profile_mana_v1.cpp, wire_profile_json_base64_v1.cpp (with its SAX
// probe DataProbe), wire_profile_lenpfx_v1.cpp; base64 in base64.cpp.
#include "mana/core/wire_profile.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "wire_profile_detail.hpp"

namespace mana::core {
namespace wire_detail {

std::string to_dec(std::uint64_t v) {
  std::array<char, 24> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

std::string to_hex_byte(std::uint8_t b) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string s = "0x";
  s += digits[b >> 4];
  s += digits[b & 0x0f];
  return s;
}

Error remote_error(Errc code, std::string_view profile, std::string_view what) {
  std::string detail;
  detail.reserve(profile.size() + 2 + what.size());
  detail.append(profile);
  detail.append(": ");
  detail.append(what);
  return make_error(code, Origin::remote, std::move(detail));
}

const char* message_type_name(MessageType type) {
  switch (type) {
    case MessageType::text:
      return "text";
    case MessageType::binary:
      return "binary";
    case MessageType::close:
      return "close";
  }
  return "unknown";
}

// Shared first check of every decoder: the whole message against max_frame.
Result<void> check_frame_size(std::string_view profile, ByteView message,
                              const FrameLimits& limits) {
  if (message.size() > limits.max_frame) {
    return remote_error(Errc::frame_too_large, profile,
                        "message of " + to_dec(message.size()) + " bytes exceeds maxFrame " +
                            to_dec(limits.max_frame));
  }
  return {};
}

Result<Frame> make_control(std::string_view profile, ByteView json_text,
                           const FrameLimits& limits) {
  if (json_text.size() > limits.max_control_json) {
    return remote_error(Errc::control_too_large, profile,
                        "control JSON of " + to_dec(json_text.size()) + " bytes exceeds limit " +
                            to_dec(limits.max_control_json));
  }
  return Frame{ControlFrame{std::string(json_text.begin(), json_text.end())}};
}

OutMessage text_message(std::string_view text) {
  OutMessage m;
  m.type = MessageType::text;
  m.data.assign(text.begin(), text.end());
  return m;
}
}  // namespace wire_detail

namespace {

bool valid_profile_id(std::string_view id) {
  if (id.empty() || id.size() > 64) {
    return false;
  }
  // "Printable" = visible ASCII 0x21..0x7e: a space would make ids ambiguous
  // in logs and configuration lists.
  for (const char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e) {
      return false;
    }
  }
  return true;
}

// Non-owning shared_ptr to a built-in singleton (aliasing constructor: no
// control block, no deleter).
std::shared_ptr<const WireProfile> borrow(const WireProfile& p) {
  return std::shared_ptr<const WireProfile>(std::shared_ptr<const WireProfile>(), &p);
}

}  // namespace

// ---- ProfileRegistry ---------------------------------------------------------

ProfileRegistry::ProfileRegistry() {
  profiles_.reserve(3);
  profiles_.push_back(borrow(mana_v1_profile()));
  profiles_.push_back(borrow(json_base64_v1_profile()));
  profiles_.push_back(borrow(lenpfx_v1_profile()));
}

// Errors (Origin::local): invalid_argument for a null profile, an id that is
// not 1..64 visible ASCII characters, or an id already registered.
Result<void> ProfileRegistry::add(std::shared_ptr<const WireProfile> profile) {
  if (!profile) {
    return make_error(Errc::invalid_argument, Origin::local, "profile registry: null profile");
  }
  const std::string_view id = profile->id();
  if (!valid_profile_id(id)) {
    return make_error(Errc::invalid_argument, Origin::local,
                      "profile registry: id must be 1..64 printable ASCII characters");
  }
  if (find(id) != nullptr) {
    return make_error(Errc::invalid_argument, Origin::local,
                      "profile registry: id \"" + std::string(id) + "\" already registered");
  }
  profiles_.push_back(std::move(profile));
  return {};
}

const WireProfile* ProfileRegistry::find(std::string_view id) const noexcept {
  for (const auto& p : profiles_) {
    if (p->id() == id) {
      return p.get();
    }
  }
  return nullptr;
}

std::vector<std::string_view> ProfileRegistry::ids() const {
  std::vector<std::string_view> out;
  out.reserve(profiles_.size());
  for (const auto& p : profiles_) {
    out.push_back(p->id());
  }
  return out;
}

// ---- OutMessage ----------------------------------------------------------------

std::size_t OutMessage::size() const noexcept {
  std::size_t n = data.size();
  for (const PayloadPart& p : parts) {
    n += p.bytes.size();
  }
  return n;
}

Bytes OutMessage::flatten() const {
  Bytes out;
  out.reserve(size());
  out.insert(out.end(), data.begin(), data.end());
  for (const PayloadPart& p : parts) {
    out.insert(out.end(), p.bytes.begin(), p.bytes.end());
  }
  return out;
}

// ---- helpers -----------------------------------------------------------------

// If max_frame is too small to carry a single payload byte
// (profile.max_payload(max_frame) == 0), nothing is appended: callers keep
// max_frame at or above the protocol minimum (1024).
void encode_data_split(const WireProfile& profile, Stream stream, ChannelId id, ByteView payload,
                       std::size_t max_frame, std::vector<OutMessage>& out) {
  const std::size_t chunk = profile.max_payload(max_frame);
  if (payload.empty() || chunk == 0) {
    return;
  }
  out.reserve(out.size() + (payload.size() + chunk - 1) / chunk);
  for (std::size_t offset = 0; offset < payload.size(); offset += chunk) {
    const std::size_t n = std::min(chunk, payload.size() - offset);
    out.push_back(profile.encode_data(stream, id, payload.subspan(offset, n)));
  }
}

}  // namespace mana::core
