// Errors of mana::core.
//
// Two enums, kept apart on purpose (as nghttp2 separates nghttp2_error from
// nghttp2_error_code):
//   * Errc      - what went wrong inside the library (typed, fine-grained);
//   * CloseCode - what goes on the wire in a WebSocket close frame.
// to_close_code() is the one explicit mapping between them. Every error carries
// its Origin: `remote` when the peer broke the protocol, `local` when our own
// side (host call, policy, timer) caused it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace mana::core {

enum class CloseCode : std::uint16_t {
  normal = 1000,
  going_away = 1001,
  protocol_error = 1002,
  abnormal = 1006,  // never sent on the wire: transport lost without a close frame
  policy_violation = 1008,
  message_too_big = 1009,
  internal_error = 1011,
  cancelled = 4000,
  unsupported_profile = 4001,
  bad_hello = 4002,
  auth_failed = 4003,
  policy_denied = 4004,
  target_unreachable = 4005,
  channel_limit = 4006,
  flow_violation = 4007,
  frame_too_large = 4008,
  unsupported_message = 4009,
  server_overload = 4010,
  resume_failed = 4011,
  timeout = 4012,
  duplicate_channel_id = 4013,
  malformed_frame = 4014,
  internal = 4015,
};

enum class Origin : std::uint8_t { local, remote };

enum class Errc : std::uint8_t {
  ok = 0,
  // Framing (profile decoders).
  truncated_frame,     // shorter than the profile's fixed header
  bad_length,          // a length field disagrees with the message size
  unknown_stream,      // reserved stream / envelope kind byte
  wrong_message_type,  // text where binary is required or vice versa
  bad_base64,          // json-base64.v1 payload is not canonical base64
  frame_too_large,     // message larger than maxFrame
  // Control messages.
  control_too_large,  // control JSON above the size limit
  bad_json,           // not valid UTF-8 JSON
  json_too_deep,      // nesting above the limit
  not_an_object,      // top-level JSON value is not an object
  missing_field,
  wrong_type,
  out_of_range,
  unknown_message_type,  // "t" names no message we know
  // Session state machine.
  expected_hello,       // first frame from the client was not hello
  bad_hello,            // hello failed validation (version, fields)
  unsupported_profile,  // requested profile not offered
  unexpected_message,   // known message in a state where it is not allowed
  auth_failed,
  policy_denied,
  rate_limited,
  channel_limit,
  duplicate_channel,
  unknown_channel,
  credit_overrun,       // peer sent more than its credit
  credit_overflow,      // peer granted credit beyond 2^53
  resume_rejected,      // unknown, expired or already-used token
  resume_out_of_range,  // resume offsets outside what we can replay
  timeout,              // handshake / heartbeat / idle deadline passed
  server_overload,
  target_unreachable,
  cancelled,
  going_away,
  // Local API misuse (never caused by the peer).
  invalid_state,     // call not allowed in the current state
  invalid_argument,  // argument outside its documented range
  buffer_full,       // a bounded buffer would be exceeded
  internal,
};

// The wire close code an error closes the connection with.
CloseCode to_close_code(Errc e) noexcept;

// True when the error ends the connection (as opposed to a per-call failure
// such as invalid_argument that leaves the session usable).
bool is_fatal(Errc e) noexcept;

// True when a client may try to resume after the connection closed with this
// code (transport-level losses); false for final closes.
bool is_resumable(CloseCode c) noexcept;

std::string_view to_string(Errc e) noexcept;
std::string_view to_string(CloseCode c) noexcept;  // e.g. "FLOW_VIOLATION"
std::string_view to_string(Origin o) noexcept;     // "local" | "remote"

// True for codes that may appear in a close frame (excludes 1005/1006/1015
// and unassigned values).
bool is_valid_wire_code(std::uint16_t code) noexcept;

struct Error {
  Errc code = Errc::internal;
  Origin origin = Origin::local;
  std::string detail;  // human-readable, never contains payload bytes or secrets

  [[nodiscard]] CloseCode close_code() const noexcept { return to_close_code(code); }
};

// std::error_code integration, so hosts can compare against conditions the way
// Beast does.
enum class ErrcCondition : std::uint8_t {
  protocol_violation = 1,
  flow_control,
  resume_failed,
  policy,
  local_misuse,
};

const std::error_category& errc_category() noexcept;
const std::error_category& errc_condition_category() noexcept;
std::error_code make_error_code(Errc e) noexcept;
std::error_condition make_error_condition(ErrcCondition c) noexcept;

}  // namespace mana::core

template <>
struct std::is_error_code_enum<mana::core::Errc> : std::true_type {};
template <>
struct std::is_error_condition_enum<mana::core::ErrcCondition> : std::true_type {};
