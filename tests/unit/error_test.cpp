// SPDX-License-Identifier: Apache-2.0
// Tests of mana/core/error.hpp: the Errc -> CloseCode table, fatality,
// resumability, groups, names, wire-code validity and std::error_code
// integration. close_codes_test.cpp checks the same mappings against
// docs/PROTOCOL.md.
#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "mana/core/error.hpp"
#include "mana/core/result.hpp"

using mana::core::CloseCode;
using mana::core::Errc;
using mana::core::ErrcCondition;
using mana::core::Origin;

namespace {

struct Row {
  Errc errc;
  std::uint16_t close;
  bool fatal;
  std::string_view name;
};

// The documented table (docs/PROTOCOL.md "Close codes"), one row per Errc in
// declaration order.
const std::vector<Row>& table() {
  static const std::vector<Row> rows = {
      {Errc::ok, 1000, false, "ok"},
      {Errc::truncated_frame, 4014, true, "truncated_frame"},
      {Errc::bad_length, 4014, true, "bad_length"},
      {Errc::unknown_stream, 4014, true, "unknown_stream"},
      {Errc::wrong_message_type, 4014, true, "wrong_message_type"},
      {Errc::bad_base64, 4014, true, "bad_base64"},
      {Errc::frame_too_large, 4008, true, "frame_too_large"},
      {Errc::control_too_large, 4008, true, "control_too_large"},
      {Errc::bad_json, 4014, true, "bad_json"},
      {Errc::json_too_deep, 4014, true, "json_too_deep"},
      {Errc::not_an_object, 4014, true, "not_an_object"},
      {Errc::missing_field, 4014, true, "missing_field"},
      {Errc::wrong_type, 4014, true, "wrong_type"},
      {Errc::out_of_range, 4014, true, "out_of_range"},
      {Errc::unknown_message_type, 4009, true, "unknown_message_type"},
      {Errc::expected_hello, 4002, true, "expected_hello"},
      {Errc::bad_hello, 4002, true, "bad_hello"},
      {Errc::unsupported_profile, 4001, true, "unsupported_profile"},
      {Errc::unexpected_message, 4009, true, "unexpected_message"},
      {Errc::auth_failed, 4003, true, "auth_failed"},
      {Errc::policy_denied, 4004, true, "policy_denied"},
      {Errc::rate_limited, 4004, true, "rate_limited"},
      {Errc::channel_limit, 4006, true, "channel_limit"},
      {Errc::duplicate_channel, 4013, true, "duplicate_channel"},
      {Errc::unknown_channel, 4014, true, "unknown_channel"},
      {Errc::credit_overrun, 4007, true, "credit_overrun"},
      {Errc::credit_overflow, 4007, true, "credit_overflow"},
      {Errc::resume_rejected, 4011, true, "resume_rejected"},
      {Errc::resume_out_of_range, 4011, true, "resume_out_of_range"},
      {Errc::timeout, 4012, true, "timeout"},
      {Errc::server_overload, 4010, true, "server_overload"},
      {Errc::target_unreachable, 4005, true, "target_unreachable"},
      {Errc::cancelled, 4000, true, "cancelled"},
      {Errc::going_away, 1001, true, "going_away"},
      {Errc::invalid_state, 4015, false, "invalid_state"},
      {Errc::invalid_argument, 4015, false, "invalid_argument"},
      {Errc::buffer_full, 4015, false, "buffer_full"},
      {Errc::internal, 4015, true, "internal"},
  };
  return rows;
}

}  // namespace

TEST_CASE("error table covers every Errc in declaration order", "[error]") {
  const auto& rows = table();
  REQUIRE(rows.size() == static_cast<std::size_t>(Errc::internal) + 1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    CHECK(static_cast<std::size_t>(rows[i].errc) == i);
  }
}

TEST_CASE("to_close_code maps every Errc to the documented code", "[error]") {
  for (const Row& row : table()) {
    CAPTURE(row.name);
    CHECK(static_cast<std::uint16_t>(mana::core::to_close_code(row.errc)) == row.close);
    const mana::core::Error err{row.errc, Origin::remote, {}};
    CHECK(err.close_code() == mana::core::to_close_code(row.errc));
  }
}

TEST_CASE("is_fatal: everything but ok and local misuse closes", "[error]") {
  for (const Row& row : table()) {
    CAPTURE(row.name);
    CHECK(mana::core::is_fatal(row.errc) == row.fatal);
  }
}

TEST_CASE("to_string(Errc) gives the enumerator name", "[error]") {
  std::set<std::string_view> seen;
  for (const Row& row : table()) {
    CHECK(mana::core::to_string(row.errc) == row.name);
    seen.insert(mana::core::to_string(row.errc));
  }
  CHECK(seen.size() == table().size());
  CHECK(mana::core::to_string(static_cast<Errc>(200)) == "unknown");
}

namespace {

const std::vector<std::pair<CloseCode, std::string_view>>& close_names() {
  static const std::vector<std::pair<CloseCode, std::string_view>> names = {
      {CloseCode::normal, "NORMAL"},
      {CloseCode::going_away, "GOING_AWAY"},
      {CloseCode::protocol_error, "PROTOCOL_ERROR"},
      {CloseCode::abnormal, "ABNORMAL"},
      {CloseCode::policy_violation, "POLICY_VIOLATION"},
      {CloseCode::message_too_big, "MESSAGE_TOO_BIG"},
      {CloseCode::internal_error, "WS_INTERNAL_ERROR"},
      {CloseCode::cancelled, "CANCELLED"},
      {CloseCode::unsupported_profile, "UNSUPPORTED_PROFILE"},
      {CloseCode::bad_hello, "BAD_HELLO"},
      {CloseCode::auth_failed, "AUTH_FAILED"},
      {CloseCode::policy_denied, "POLICY_DENIED"},
      {CloseCode::target_unreachable, "TARGET_UNREACHABLE"},
      {CloseCode::channel_limit, "CHANNEL_LIMIT"},
      {CloseCode::flow_violation, "FLOW_VIOLATION"},
      {CloseCode::frame_too_large, "FRAME_TOO_LARGE"},
      {CloseCode::unsupported_message, "UNSUPPORTED_MESSAGE"},
      {CloseCode::server_overload, "SERVER_OVERLOAD"},
      {CloseCode::resume_failed, "RESUME_FAILED"},
      {CloseCode::timeout, "TIMEOUT"},
      {CloseCode::duplicate_channel_id, "DUPLICATE_CHANNEL_ID"},
      {CloseCode::malformed_frame, "MALFORMED_FRAME"},
      {CloseCode::internal, "INTERNAL_ERROR"},
  };
  return names;
}

}  // namespace

TEST_CASE("to_string(CloseCode) gives the protocol names", "[error]") {
  std::set<std::string_view> seen;
  for (const auto& [code, name] : close_names()) {
    CHECK(mana::core::to_string(code) == name);
    seen.insert(name);
  }
  CHECK(seen.size() == close_names().size());
  CHECK(mana::core::to_string(static_cast<CloseCode>(4999)) == "UNKNOWN");
}

TEST_CASE("application close codes have the documented values", "[error]") {
  CHECK(static_cast<int>(CloseCode::cancelled) == 4000);
  CHECK(static_cast<int>(CloseCode::malformed_frame) == 4014);
  CHECK(static_cast<int>(CloseCode::internal) == 4015);
  CHECK(static_cast<int>(CloseCode::abnormal) == 1006);
}

TEST_CASE("to_string(Origin)", "[error]") {
  CHECK(mana::core::to_string(Origin::local) == "local");
  CHECK(mana::core::to_string(Origin::remote) == "remote");
}

TEST_CASE("is_resumable: exactly 1006, 4010 and 4012", "[error]") {
  for (const auto& [code, name] : close_names()) {
    CAPTURE(name);
    const bool expected = code == CloseCode::abnormal || code == CloseCode::server_overload ||
                          code == CloseCode::timeout;
    CHECK(mana::core::is_resumable(code) == expected);
  }
  CHECK_FALSE(mana::core::is_resumable(static_cast<CloseCode>(4999)));
  CHECK_FALSE(mana::core::is_resumable(static_cast<CloseCode>(1005)));
}

TEST_CASE("is_valid_wire_code follows RFC 6455 plus 3000..4999", "[error]") {
  const std::set<std::uint16_t> valid_low = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011};
  for (std::uint32_t c = 0; c <= 65535; ++c) {
    const auto code = static_cast<std::uint16_t>(c);
    const bool expected = valid_low.count(code) != 0 || (code >= 3000 && code <= 4999);
    if (mana::core::is_valid_wire_code(code) != expected) {
      CAPTURE(c);
      FAIL("wire code validity mismatch");
    }
  }
  for (const std::uint16_t c : {1004, 1005, 1006, 1012, 1013, 1014, 1015, 999, 2999, 5000}) {
    CAPTURE(c);
    CHECK_FALSE(mana::core::is_valid_wire_code(c));
  }
}

TEST_CASE("every code an Errc maps to is valid on the wire", "[error]") {
  for (const Row& row : table()) {
    CAPTURE(row.name);
    const auto code = static_cast<std::uint16_t>(mana::core::to_close_code(row.errc));
    CHECK(mana::core::is_valid_wire_code(code));
    CHECK(mana::core::to_string(mana::core::to_close_code(row.errc)) != "UNKNOWN");
  }
}

TEST_CASE("make_error_code and the errc category", "[error]") {
  const std::error_code ec = Errc::credit_overrun;  // implicit via is_error_code_enum
  CHECK(ec.category() == mana::core::errc_category());
  CHECK(ec.value() == static_cast<int>(Errc::credit_overrun));
  CHECK(ec.message() == "credit_overrun");
  CHECK(std::string(ec.category().name()) == "mana.core");
  CHECK(ec == mana::core::make_error_code(Errc::credit_overrun));
  CHECK(ec != mana::core::make_error_code(Errc::credit_overflow));
  CHECK_FALSE(static_cast<bool>(mana::core::make_error_code(Errc::ok)));
  CHECK(static_cast<bool>(mana::core::make_error_code(Errc::internal)));
}

TEST_CASE("error conditions group the Errc values", "[error]") {
  using C = ErrcCondition;
  const std::vector<std::pair<Errc, int>> expected = {
      {Errc::ok, 0},
      {Errc::truncated_frame, static_cast<int>(C::protocol_violation)},
      {Errc::bad_length, static_cast<int>(C::protocol_violation)},
      {Errc::unknown_stream, static_cast<int>(C::protocol_violation)},
      {Errc::wrong_message_type, static_cast<int>(C::protocol_violation)},
      {Errc::bad_base64, static_cast<int>(C::protocol_violation)},
      {Errc::frame_too_large, static_cast<int>(C::protocol_violation)},
      {Errc::control_too_large, static_cast<int>(C::protocol_violation)},
      {Errc::bad_json, static_cast<int>(C::protocol_violation)},
      {Errc::json_too_deep, static_cast<int>(C::protocol_violation)},
      {Errc::not_an_object, static_cast<int>(C::protocol_violation)},
      {Errc::missing_field, static_cast<int>(C::protocol_violation)},
      {Errc::wrong_type, static_cast<int>(C::protocol_violation)},
      {Errc::out_of_range, static_cast<int>(C::protocol_violation)},
      {Errc::unknown_message_type, static_cast<int>(C::protocol_violation)},
      {Errc::expected_hello, static_cast<int>(C::protocol_violation)},
      {Errc::bad_hello, static_cast<int>(C::protocol_violation)},
      {Errc::unsupported_profile, static_cast<int>(C::protocol_violation)},
      {Errc::unexpected_message, static_cast<int>(C::protocol_violation)},
      {Errc::auth_failed, static_cast<int>(C::policy)},
      {Errc::policy_denied, static_cast<int>(C::policy)},
      {Errc::rate_limited, static_cast<int>(C::policy)},
      {Errc::channel_limit, static_cast<int>(C::policy)},
      {Errc::duplicate_channel, static_cast<int>(C::protocol_violation)},
      {Errc::unknown_channel, static_cast<int>(C::protocol_violation)},
      {Errc::credit_overrun, static_cast<int>(C::flow_control)},
      {Errc::credit_overflow, static_cast<int>(C::flow_control)},
      {Errc::resume_rejected, static_cast<int>(C::resume_failed)},
      {Errc::resume_out_of_range, static_cast<int>(C::resume_failed)},
      {Errc::timeout, static_cast<int>(C::transport)},
      {Errc::server_overload, static_cast<int>(C::transport)},
      {Errc::target_unreachable, static_cast<int>(C::policy)},
      {Errc::cancelled, 0},
      {Errc::going_away, static_cast<int>(C::transport)},
      {Errc::invalid_state, static_cast<int>(C::local_misuse)},
      {Errc::invalid_argument, static_cast<int>(C::local_misuse)},
      {Errc::buffer_full, static_cast<int>(C::local_misuse)},
      {Errc::internal, static_cast<int>(C::protocol_violation)},
  };
  REQUIRE(expected.size() == table().size());
  const std::vector<C> all = {C::protocol_violation, C::flow_control, C::resume_failed, C::policy,
                              C::local_misuse,       C::transport};
  for (const auto& [errc, cond] : expected) {
    CAPTURE(mana::core::to_string(errc));
    const std::error_code ec = errc;
    for (const C c : all) {
      const bool match = static_cast<int>(c) == cond;
      CHECK((ec == c) == match);
      CHECK((ec == mana::core::make_error_condition(c)) == match);
    }
    const std::error_condition def = ec.default_error_condition();
    if (cond == 0) {
      CHECK(def.category() == mana::core::errc_category());
    } else {
      CHECK(def.category() == mana::core::errc_condition_category());
      CHECK(def.value() == cond);
    }
  }
}

TEST_CASE("out-of-range values are not errors of the table", "[error]") {
  const std::error_code big(300, mana::core::errc_category());  // 300 % 256 is a valid Errc
  CHECK(big.message() == "unknown");
  CHECK(big.default_error_condition().category() == mana::core::errc_category());
  CHECK(big != ErrcCondition::protocol_violation);
  const std::error_code negative(-1, mana::core::errc_category());
  CHECK(negative.message() == "unknown");
  CHECK(negative != ErrcCondition::local_misuse);
  CHECK(mana::core::to_close_code(static_cast<Errc>(200)) == CloseCode::internal);
  CHECK(mana::core::is_fatal(static_cast<Errc>(200)));
  CHECK(mana::core::group_of(static_cast<Errc>(200)) == mana::core::ErrcGroup::protocol);
  CHECK(mana::core::to_string(static_cast<mana::core::ErrcGroup>(200)) == "unknown");
  CHECK(mana::core::make_error_condition(ErrcCondition::transport).message() ==
        "transport lost, timed out or shed");
}

TEST_CASE("each group matches at most one condition, shared by all its errors", "[error]") {
  std::map<std::string_view, int> condition_of_group;
  for (const Row& row : table()) {
    CAPTURE(row.name);
    const std::error_condition c = std::error_code(row.errc).default_error_condition();
    const int cond = c.category() == mana::core::errc_condition_category() ? c.value() : 0;
    const auto group = mana::core::to_string(mana::core::group_of(row.errc));
    CHECK(group != "unknown");
    const auto it = condition_of_group.emplace(group, cond).first;
    CHECK(it->second == cond);
  }
  CHECK(condition_of_group.size() >= 8);
}

TEST_CASE("errc_from_close: a received code maps back to an error that closes with it", "[error]") {
  // The RFC 6455 codes stand for the protocol's own codes; every other code round-trips.
  const std::map<CloseCode, CloseCode> alias = {
      {CloseCode::protocol_error, CloseCode::malformed_frame},
      {CloseCode::abnormal, CloseCode::going_away},
      {CloseCode::policy_violation, CloseCode::policy_denied},
      {CloseCode::message_too_big, CloseCode::frame_too_large},
      {CloseCode::internal_error, CloseCode::internal},
  };
  for (const auto& [code, name] : close_names()) {
    CAPTURE(name);
    const auto it = alias.find(code);
    const CloseCode expected = it == alias.end() ? code : it->second;
    CHECK(mana::core::to_close_code(mana::core::errc_from_close(code)) == expected);
  }
  CHECK(mana::core::errc_from_close(CloseCode::normal) == Errc::ok);
  CHECK(mana::core::errc_from_close(CloseCode::flow_violation) == Errc::credit_overrun);
  CHECK(mana::core::errc_from_close(static_cast<CloseCode>(1007)) == Errc::internal);
}

TEST_CASE("conditions do not match foreign error codes", "[error]") {
  const std::error_code foreign = std::make_error_code(std::errc::invalid_argument);
  CHECK(foreign != ErrcCondition::local_misuse);
  CHECK(foreign != ErrcCondition::protocol_violation);
  CHECK(std::string(mana::core::errc_condition_category().name()) == "mana.core.condition");
  CHECK(mana::core::make_error_condition(ErrcCondition::flow_control).message() ==
        "flow control violation");
}

TEST_CASE("Error and Result carry code, origin and detail", "[error]") {
  const mana::core::Error e =
      mana::core::make_error(Errc::credit_overrun, Origin::remote, "channel 3");
  CHECK(e.code == Errc::credit_overrun);
  CHECK(e.origin == Origin::remote);
  CHECK(e.detail == "channel 3");
  CHECK(e.close_code() == CloseCode::flow_violation);

  const mana::core::Result<int> ok = 5;
  REQUIRE(ok.ok());
  CHECK(*ok == 5);
  const mana::core::Result<int> bad = e;
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::credit_overrun);

  const mana::core::Result<void> v;
  CHECK(v.ok());
  const mana::core::Result<void> vbad = e;
  CHECK_FALSE(vbad.ok());
  CHECK(vbad.error().origin == Origin::remote);
}
