// Errors of mana::core: the Errc -> CloseCode mapping, names, and the
// std::error_code integration (docs/PROTOCOL.md, "Close codes").
#include "mana/core/error.hpp"

#include <string>
#include <string_view>
#include <system_error>

namespace mana::core {

CloseCode to_close_code(Errc e) noexcept {
  switch (e) {
    case Errc::ok:
      return CloseCode::normal;
    case Errc::truncated_frame:
    case Errc::bad_length:
    case Errc::unknown_stream:
    case Errc::wrong_message_type:
    case Errc::bad_base64:
    case Errc::bad_json:
    case Errc::json_too_deep:
    case Errc::not_an_object:
    case Errc::missing_field:
    case Errc::wrong_type:
    case Errc::out_of_range:
    case Errc::unknown_channel:
      return CloseCode::malformed_frame;
    case Errc::frame_too_large:
    case Errc::control_too_large:
      return CloseCode::frame_too_large;
    case Errc::unknown_message_type:
    case Errc::unexpected_message:
      return CloseCode::unsupported_message;
    case Errc::expected_hello:
    case Errc::bad_hello:
      return CloseCode::bad_hello;
    case Errc::unsupported_profile:
      return CloseCode::unsupported_profile;
    case Errc::auth_failed:
      return CloseCode::auth_failed;
    case Errc::policy_denied:
    case Errc::rate_limited:
      return CloseCode::policy_denied;
    case Errc::channel_limit:
      return CloseCode::channel_limit;
    case Errc::duplicate_channel:
      return CloseCode::duplicate_channel_id;
    case Errc::credit_overrun:
    case Errc::credit_overflow:
      return CloseCode::flow_violation;
    case Errc::resume_rejected:
    case Errc::resume_out_of_range:
      return CloseCode::resume_failed;
    case Errc::timeout:
      return CloseCode::timeout;
    case Errc::server_overload:
      return CloseCode::server_overload;
    case Errc::target_unreachable:
      return CloseCode::target_unreachable;
    case Errc::cancelled:
      return CloseCode::cancelled;
    case Errc::going_away:
      return CloseCode::going_away;
    case Errc::invalid_state:
    case Errc::invalid_argument:
    case Errc::buffer_full:
    case Errc::internal:
      return CloseCode::internal;
  }
  return CloseCode::internal;
}

bool is_fatal(Errc e) noexcept {
  switch (e) {
    case Errc::ok:
    case Errc::invalid_state:
    case Errc::invalid_argument:
    case Errc::buffer_full:
      return false;
    default:
      return true;
  }
}

bool is_resumable(CloseCode c) noexcept {
  switch (c) {
    case CloseCode::abnormal:
    case CloseCode::server_overload:
    case CloseCode::timeout:
      return true;
    default:
      return false;
  }
}

std::string_view to_string(Errc e) noexcept {
  switch (e) {
    case Errc::ok:
      return "ok";
    case Errc::truncated_frame:
      return "truncated_frame";
    case Errc::bad_length:
      return "bad_length";
    case Errc::unknown_stream:
      return "unknown_stream";
    case Errc::wrong_message_type:
      return "wrong_message_type";
    case Errc::bad_base64:
      return "bad_base64";
    case Errc::frame_too_large:
      return "frame_too_large";
    case Errc::control_too_large:
      return "control_too_large";
    case Errc::bad_json:
      return "bad_json";
    case Errc::json_too_deep:
      return "json_too_deep";
    case Errc::not_an_object:
      return "not_an_object";
    case Errc::missing_field:
      return "missing_field";
    case Errc::wrong_type:
      return "wrong_type";
    case Errc::out_of_range:
      return "out_of_range";
    case Errc::unknown_message_type:
      return "unknown_message_type";
    case Errc::expected_hello:
      return "expected_hello";
    case Errc::bad_hello:
      return "bad_hello";
    case Errc::unsupported_profile:
      return "unsupported_profile";
    case Errc::unexpected_message:
      return "unexpected_message";
    case Errc::auth_failed:
      return "auth_failed";
    case Errc::policy_denied:
      return "policy_denied";
    case Errc::rate_limited:
      return "rate_limited";
    case Errc::channel_limit:
      return "channel_limit";
    case Errc::duplicate_channel:
      return "duplicate_channel";
    case Errc::unknown_channel:
      return "unknown_channel";
    case Errc::credit_overrun:
      return "credit_overrun";
    case Errc::credit_overflow:
      return "credit_overflow";
    case Errc::resume_rejected:
      return "resume_rejected";
    case Errc::resume_out_of_range:
      return "resume_out_of_range";
    case Errc::timeout:
      return "timeout";
    case Errc::server_overload:
      return "server_overload";
    case Errc::target_unreachable:
      return "target_unreachable";
    case Errc::cancelled:
      return "cancelled";
    case Errc::going_away:
      return "going_away";
    case Errc::invalid_state:
      return "invalid_state";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::buffer_full:
      return "buffer_full";
    case Errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string_view to_string(CloseCode c) noexcept {
  switch (c) {
    case CloseCode::normal:
      return "NORMAL";
    case CloseCode::going_away:
      return "GOING_AWAY";
    case CloseCode::protocol_error:
      return "PROTOCOL_ERROR";
    case CloseCode::abnormal:
      return "ABNORMAL";
    case CloseCode::policy_violation:
      return "POLICY_VIOLATION";
    case CloseCode::message_too_big:
      return "MESSAGE_TOO_BIG";
    // RFC 6455 1011; 4015 keeps the protocol's own name INTERNAL_ERROR.
    case CloseCode::internal_error:
      return "WS_INTERNAL_ERROR";
    case CloseCode::cancelled:
      return "CANCELLED";
    case CloseCode::unsupported_profile:
      return "UNSUPPORTED_PROFILE";
    case CloseCode::bad_hello:
      return "BAD_HELLO";
    case CloseCode::auth_failed:
      return "AUTH_FAILED";
    case CloseCode::policy_denied:
      return "POLICY_DENIED";
    case CloseCode::target_unreachable:
      return "TARGET_UNREACHABLE";
    case CloseCode::channel_limit:
      return "CHANNEL_LIMIT";
    case CloseCode::flow_violation:
      return "FLOW_VIOLATION";
    case CloseCode::frame_too_large:
      return "FRAME_TOO_LARGE";
    case CloseCode::unsupported_message:
      return "UNSUPPORTED_MESSAGE";
    case CloseCode::server_overload:
      return "SERVER_OVERLOAD";
    case CloseCode::resume_failed:
      return "RESUME_FAILED";
    case CloseCode::timeout:
      return "TIMEOUT";
    case CloseCode::duplicate_channel_id:
      return "DUPLICATE_CHANNEL_ID";
    case CloseCode::malformed_frame:
      return "MALFORMED_FRAME";
    case CloseCode::internal:
      return "INTERNAL_ERROR";
  }
  return "UNKNOWN";
}

std::string_view to_string(Origin o) noexcept {
  switch (o) {
    case Origin::local:
      return "local";
    case Origin::remote:
      return "remote";
  }
  return "unknown";
}

bool is_valid_wire_code(std::uint16_t code) noexcept {
  // RFC 6455 section 7.4: 1004 reserved, 1005/1006/1015 never sent; 1012..1014
  // and the rest of 1000..2999 are not defined by RFC 6455; 3000..4999 are
  // registered/private codes.
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1011) return true;
  return code >= 3000 && code <= 4999;
}

namespace {

// Condition of an Errc, or 0 when it belongs to none (ok, timeout, cancelled,
// going_away, internal).
int condition_of(Errc e) noexcept {
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
    case Errc::not_an_object:
    case Errc::missing_field:
    case Errc::wrong_type:
    case Errc::out_of_range:
    case Errc::unknown_message_type:
    case Errc::expected_hello:
    case Errc::bad_hello:
    case Errc::unsupported_profile:
    case Errc::unexpected_message:
    case Errc::duplicate_channel:
    case Errc::unknown_channel:
      return static_cast<int>(ErrcCondition::protocol_violation);
    case Errc::credit_overrun:
    case Errc::credit_overflow:
      return static_cast<int>(ErrcCondition::flow_control);
    case Errc::resume_rejected:
    case Errc::resume_out_of_range:
      return static_cast<int>(ErrcCondition::resume_failed);
    case Errc::auth_failed:
    case Errc::policy_denied:
    case Errc::rate_limited:
    case Errc::channel_limit:
    case Errc::server_overload:
    case Errc::target_unreachable:
      return static_cast<int>(ErrcCondition::policy);
    case Errc::invalid_state:
    case Errc::invalid_argument:
    case Errc::buffer_full:
      return static_cast<int>(ErrcCondition::local_misuse);
    default:
      return 0;
  }
}

class ErrcCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "mana.core"; }

  [[nodiscard]] std::string message(int ev) const override {
    return std::string(to_string(static_cast<Errc>(ev)));
  }

  [[nodiscard]] std::error_condition default_error_condition(int ev) const noexcept override {
    if (ev < 0 || ev > static_cast<int>(Errc::internal)) return {ev, *this};
    const int cond = condition_of(static_cast<Errc>(ev));
    if (cond == 0) return {ev, *this};
    return {cond, errc_condition_category()};
  }
};

class ErrcConditionCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "mana.core.condition"; }

  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<ErrcCondition>(ev)) {
      case ErrcCondition::protocol_violation:
        return "protocol violation";
      case ErrcCondition::flow_control:
        return "flow control violation";
      case ErrcCondition::resume_failed:
        return "resume failed";
      case ErrcCondition::policy:
        return "refused by policy";
      case ErrcCondition::local_misuse:
        return "local API misuse";
    }
    return "unknown condition";
  }

  [[nodiscard]] bool equivalent(const std::error_code& code,
                                int condition) const noexcept override {
    if (code.category() == errc_category()) {
      const int v = code.value();
      if (v < 0 || v > static_cast<int>(Errc::internal)) return false;
      const int cond = condition_of(static_cast<Errc>(v));
      return cond != 0 && cond == condition;
    }
    return false;
  }
};

}  // namespace

const std::error_category& errc_category() noexcept {
  static const ErrcCategory category;
  return category;
}

const std::error_category& errc_condition_category() noexcept {
  static const ErrcConditionCategory category;
  return category;
}

std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), errc_category()};
}

std::error_condition make_error_condition(ErrcCondition c) noexcept {
  return {static_cast<int>(c), errc_condition_category()};
}

}  // namespace mana::core
