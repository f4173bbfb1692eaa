// Control messages: typed structs, strict parsing and encoding.
//
// Wire form: a JSON object whose "t" member names the message type
// (docs/PROTOCOL.md, "Control messages"). Parsing never throws (nlohmann_json
// is used with exceptions disabled at the call sites) and validates types,
// ranges, required fields and limits before building the struct. Unknown
// fields are ignored; an unknown "t" is Errc::unknown_message_type.
// Field names on the wire are camelCase exactly as in PROTOCOL.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "mana/core/result.hpp"
#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

namespace mana::core {

inline constexpr int protocol_version = 1;

// ---- hello -----------------------------------------------------------------

struct Auth {
  enum class Scheme : std::uint8_t { none, bearer };
  Scheme scheme = Scheme::none;
  std::string token;  // bearer only; 1..8192 chars
  friend bool operator==(const Auth&, const Auth&) = default;
};

// One channel's position in a resume exchange (both directions use it).
struct ResumeChannel {
  ChannelId id = 0;
  std::uint64_t rx = 0;      // bytes the sender of this entry received on the channel
  std::uint64_t credit = 0;  // credit granted beyond rx (peer may send up to rx + credit)
  bool closed = false;       // the sender of this entry has received the peer's close
  friend bool operator==(const ResumeChannel&, const ResumeChannel&) = default;
};

struct ClientCaps {
  std::string profile{default_profile_id};  // caps.profile
  std::optional<std::uint32_t> max_frame;   // caps.maxFrame: largest message we accept
  bool bidi = true;                         // caps.bidi: we honour client->server credit
  bool resume = true;                       // caps.resume: we want a resume token
  friend bool operator==(const ClientCaps&, const ClientCaps&) = default;
};

struct ResumeRequest {
  std::string token;                    // 16..256 chars, [A-Za-z0-9_-]
  std::vector<ResumeChannel> channels;  // at most 256 entries, unique ids
  friend bool operator==(const ResumeRequest&, const ResumeRequest&) = default;
};

struct Hello {
  int proto = protocol_version;
  std::optional<Auth> auth;
  ClientCaps caps;
  std::optional<ResumeRequest> resume;
  friend bool operator==(const Hello&, const Hello&) = default;
};

struct ServerCaps {
  std::string flow = "credit";                       // caps.flow
  std::uint32_t max_frame = 1 << 20;                 // caps.maxFrame
  std::string profile_accepted{default_profile_id};  // caps.profileAccepted
  bool bidi = true;                                  // caps.bidi: client->server credit enforced
  std::optional<std::uint32_t> resume_ttl_ms;        // caps.resumeTtlMs: present if resume offered
  std::uint32_t heartbeat_ms = 20000;                // caps.heartbeatMs
  std::uint32_t idle_timeout_ms = 60000;             // caps.idleTimeoutMs
  std::uint32_t max_channels = 4;                    // caps.maxChannels
  std::uint64_t window = 256 * 1024;                 // caps.window: default initial window
  friend bool operator==(const ServerCaps&, const ServerCaps&) = default;
};

struct ResumeGrant {
  std::string token;                    // new token (rotated on every hello_ok)
  std::vector<ResumeChannel> channels;  // the server's position per channel it still has
  friend bool operator==(const ResumeGrant&, const ResumeGrant&) = default;
};

struct HelloOk {
  std::string server;
  // The gateway's route id (PROTOCOL.md §5.2, §9.8): a client reconnects for a resume to the same
  // URL with `?route=<id>` so a balancer can send it to this gateway. Optional; when present it
  // matches ^[a-z0-9-]{1,32}$ (is_route_id), anything else is out_of_range.
  std::optional<std::string> route;
  ServerCaps caps;
  std::optional<ResumeGrant> resume;
  friend bool operator==(const HelloOk&, const HelloOk&) = default;
};

// ---- channels --------------------------------------------------------------

struct Target {
  std::string host;        // 1..253 chars
  std::uint16_t port = 0;  // 1..65535
  friend bool operator==(const Target&, const Target&) = default;
};

struct Term {
  std::uint16_t cols = 80;  // 1..10000
  std::uint16_t rows = 24;  // 1..10000
  std::map<std::string, std::string> env;
  friend bool operator==(const Term&, const Term&) = default;
};

struct UserSpec {
  std::string username;
  std::string auth_json;  // opaque object, kept as compact JSON text
  friend bool operator==(const UserSpec&, const UserSpec&) = default;
};

struct Open {
  ChannelId id = 0;          // 1..2^31-1, chosen by the client
  std::string kind = "tcp";  // "tcp" (default) | "ssh" (reserved)
  Target target;
  std::optional<UserSpec> user;
  std::optional<Term> term;
  std::optional<std::uint64_t> window;  // initial server->client credit; default caps.window
  friend bool operator==(const Open&, const Open&) = default;
};

struct OpenOk {
  ChannelId id = 0;
  std::optional<std::string> resume_key;  // resumeKey
  std::optional<std::uint64_t> window;    // initial client->server credit (bidi)
  friend bool operator==(const OpenOk&, const OpenOk&) = default;
};

struct OpenErr {
  ChannelId id = 0;
  std::string code;  // e.g. "policy_denied", "target_unreachable", "not_ssh"
  std::string msg;
  friend bool operator==(const OpenErr&, const OpenErr&) = default;
};

struct Resize {
  ChannelId id = 0;
  std::uint16_t cols = 0;
  std::uint16_t rows = 0;
  friend bool operator==(const Resize&, const Resize&) = default;
};

struct Signal {
  ChannelId id = 0;
  std::string sig;  // e.g. "INT"; 1..32 chars [A-Z0-9]
  friend bool operator==(const Signal&, const Signal&) = default;
};

struct Close {
  ChannelId id = 0;
  std::optional<std::string> reason;
  friend bool operator==(const Close&, const Close&) = default;
};

struct Exit {
  ChannelId id = 0;
  std::optional<std::int32_t> code;
  std::optional<std::string> sig;
  friend bool operator==(const Exit&, const Exit&) = default;
};

struct Flow {
  ChannelId id = 0;
  std::uint64_t credit = 0;         // added to the sender's allowance
  std::optional<std::uint64_t> rx;  // acknowledgement: bytes received so far
  friend bool operator==(const Flow&, const Flow&) = default;
};

struct Ping {
  std::uint64_t ts = 0;  // sender's clock in its own units (ours: microseconds); echoed in pong
  friend bool operator==(const Ping&, const Ping&) = default;
};

struct Pong {
  std::uint64_t ts = 0;
  friend bool operator==(const Pong&, const Pong&) = default;
};

using ControlMessage = std::variant<Hello, HelloOk, Open, OpenOk, OpenErr, Resize, Signal, Close,
                                    Exit, Flow, Ping, Pong>;

// The "t" value of a message, e.g. "hello_ok".
std::string_view type_name(const ControlMessage& m) noexcept;

// Whether `s` is a well-formed resume token (16..256 chars of [A-Za-z0-9_-]), the rule
// parse_control applies to hello.resume.token and hello_ok.resume.token.
bool is_resume_token(std::string_view s) noexcept;

// Whether `s` is a well-formed route id (1..32 chars of [a-z0-9-]), the rule parse_control
// applies to hello_ok.route and the gateway to [server] route_id.
bool is_route_id(std::string_view s) noexcept;
inline constexpr std::size_t max_route_id_len = 32;

struct ParseLimits {
  std::size_t max_json = 64 * 1024;  // bytes of JSON text
  std::size_t max_depth = 8;         // nesting of objects/arrays
  std::size_t max_resume_channels = 256;
  std::size_t max_env_entries = 64;
};

// Parse one control message. Errors (all Origin::remote):
//   control_too_large, bad_json, json_too_deep, not_an_object,
//   missing_field, wrong_type, out_of_range, unknown_message_type.
// Error::detail names the offending field.
Result<ControlMessage> parse_control(std::string_view json, const ParseLimits& limits = {});

// Encode to compact JSON (optional fields omitted when unset).
std::string encode_control(const ControlMessage& m);

}  // namespace mana::core
