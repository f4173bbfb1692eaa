// Wire profiles: how the protocol's frames are represented in WebSocket
// messages. Three built-in profiles (docs/PROTOCOL.md section "Wire profiles"):
//
//   mana.v1         control = JSON text message; data = binary message
//                   [1 byte stream][4 bytes channel id BE][payload]
//   json-base64.v1  every frame is a JSON text message; data =
//                   {"kind":"data","stream":"stdout"|"stderr","id":N,"payload":"<base64>"}
//   lenpfx.v1       binary envelope [4 bytes length BE][1 byte kind][4 bytes id][payload],
//                   length counts the bytes after itself; kind 0x10 control JSON
//                   (id 0), 0x01 stdout, 0x02 stderr.
//
// Decoders are strict: every length is checked against the limits before any
// allocation, reserved bytes are rejected, and errors are typed (Errc) with
// Origin::remote. A host can register its own profile in a ProfileRegistry.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mana/core/result.hpp"
#include "mana/core/types.hpp"

namespace mana::core {

// Bounds applied while decoding. Defaults are the protocol defaults.
struct FrameLimits {
  std::size_t max_frame = std::size_t{1} << 20;  // whole WebSocket message, bytes
  std::size_t max_control_json = 64 * 1024;      // control JSON text, bytes
  std::size_t max_json_depth = 8;                // nesting of objects/arrays
};

// A control message still in JSON text form (parsed by messages.hpp).
struct ControlFrame {
  std::string json;
  friend bool operator==(const ControlFrame&, const ControlFrame&) = default;
};

struct DataFrame {
  Stream stream = Stream::out;
  ChannelId id = 0;
  Bytes payload;
  friend bool operator==(const DataFrame&, const DataFrame&) = default;
};

using Frame = std::variant<ControlFrame, DataFrame>;

// Bytes of an outgoing message that live in memory shared with the sender's
// replay buffer instead of being copied into OutMessage::data. `owner` keeps
// that memory alive (and unchanged: it is immutable once written) for as long
// as the part exists, whatever the replay buffer does meanwhile.
struct PayloadPart {
  std::shared_ptr<const void> owner;
  ByteView bytes;
};

// One outgoing WebSocket message. Its bytes on the wire are `data` followed by
// every element of `parts`, in order. `parts` is empty unless the host asked
// the session for shared payloads (SessionCore::set_shared_payloads), so by
// default `data` is the whole message. For MessageType::close, `data` and
// `parts` are empty and close_code/close_reason describe the close frame.
struct OutMessage {
  MessageType type = MessageType::binary;
  Bytes data;
  std::vector<PayloadPart> parts;
  CloseCode close_code = CloseCode::normal;
  std::string close_reason;

  // Size of the message on the wire: data plus every part.
  [[nodiscard]] std::size_t size() const noexcept;
  // Bytes held by the message itself (data), not shared with anyone else.
  [[nodiscard]] std::size_t owned_size() const noexcept { return data.size(); }
  // The whole message as one contiguous buffer (copies the parts).
  [[nodiscard]] Bytes flatten() const;
};

class WireProfile {
 public:
  virtual ~WireProfile() = default;

  // Profile id as named in hello.caps.profile, e.g. "mana.v1".
  [[nodiscard]] virtual std::string_view id() const noexcept = 0;

  // Decode one WebSocket message into a frame. Errors: truncated_frame,
  // bad_length, unknown_stream, wrong_message_type, bad_base64,
  // frame_too_large, control_too_large, bad_json (json-base64 data frames).
  [[nodiscard]] virtual Result<Frame> decode(MessageType type, ByteView message,
                                             const FrameLimits& limits) const = 0;

  [[nodiscard]] virtual OutMessage encode_control(std::string_view json) const = 0;
  [[nodiscard]] virtual OutMessage encode_data(Stream stream, ChannelId id,
                                               ByteView payload) const = 0;

  // Largest payload whose encoded data message fits in `max_frame` bytes.
  // Senders split data so no message exceeds the peer's maxFrame.
  [[nodiscard]] virtual std::size_t max_payload(std::size_t max_frame) const noexcept = 0;

  // Profiles whose data message is a fixed header followed by the raw payload
  // bytes (mana.v1, lenpfx.v1) return true and implement
  // encode_data_header(). A profile that transforms the payload (json-base64.v1
  // encodes it) returns false, and senders always use encode_data() with it.
  [[nodiscard]] virtual bool raw_payload() const noexcept { return false; }
  // The message encode_data(stream, id, payload) would produce, without the
  // payload: `data` holds the header only (for lenpfx.v1 the length field
  // counts the `payload_size` bytes that follow). The caller appends the
  // payload as PayloadPart(s). Precondition: raw_payload() and payload_size <=
  // max_payload(message limit). Profiles without raw payloads return an empty
  // message.
  [[nodiscard]] virtual OutMessage encode_data_header(Stream stream, ChannelId id,
                                                      std::size_t payload_size) const {
    (void)stream;
    (void)id;
    (void)payload_size;
    return {};
  }
};

// Built-in profiles (stateless singletons).
const WireProfile& mana_v1_profile() noexcept;
const WireProfile& json_base64_v1_profile() noexcept;
const WireProfile& lenpfx_v1_profile() noexcept;

inline constexpr std::string_view default_profile_id = "mana.v1";
inline constexpr std::string_view subprotocol = "mana.ssh.v1";

// Profiles known to one endpoint. Starts with the three built-in profiles; a
// host may add its own (ids must be unique, 1..64 printable ASCII chars).
class ProfileRegistry {
 public:
  ProfileRegistry();
  Result<void> add(std::shared_ptr<const WireProfile> profile);
  [[nodiscard]] const WireProfile* find(std::string_view id) const noexcept;
  [[nodiscard]] std::vector<std::string_view> ids() const;

 private:
  std::vector<std::shared_ptr<const WireProfile>> profiles_;
};

// Split `payload` into data messages of at most `max_frame` bytes each and
// append them to `out` (an empty payload produces no message).
void encode_data_split(const WireProfile& profile, Stream stream, ChannelId id, ByteView payload,
                       std::size_t max_frame, std::vector<OutMessage>& out);

// Standard base64 (RFC 4648, with padding), strict decode: rejects
// non-alphabet characters, bad padding and non-zero trailing bits.
std::string base64_encode(ByteView data);
Result<Bytes> base64_decode(std::string_view text);

}  // namespace mana::core
