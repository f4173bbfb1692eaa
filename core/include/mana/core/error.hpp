// SPDX-License-Identifier: Apache-2.0
// Errors of mana::core.
//
// Two enums, kept apart on purpose (as nghttp2 separates nghttp2_error from
// nghttp2_error_code):
//   * Errc      - what went wrong inside the library (typed, fine-grained);
//   * CloseCode - what goes on the wire in a WebSocket close frame.
// to_close_code() is the one explicit mapping between them. Every error carries
// its Origin: `remote` when the peer broke the protocol, `local` when our own
// side (host call, policy, timer) caused it.
//
// The enums and every mapping below come from one table, errc.def (one row per
// close code, condition, group and Errc); the JS error classes are generated
// from the same rows (scripts/gen_errc.py). Change a row there, not here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace mana::core {

enum class CloseCode : std::uint16_t {
#define MANA_CLOSE_CODE(name, value, wire_name, resumable, errc_on_receipt) name = (value),
#include "mana/core/errc.def"
};

enum class Origin : std::uint8_t { local, remote };

// Library errors, one enumerator per MANA_ERRC row of errc.def (its comments say what each means).
enum class Errc : std::uint8_t {
#define MANA_ERRC(name, close_code, group, fatal, framing, summary) name,
#include "mana/core/errc.def"
};

// What an error means to the application, and so what it should do about it: one JS error class
// each (docs/PROTOCOL.md §11 "Error groups"). Rows MANA_ERRC_GROUP of errc.def.
enum class ErrcGroup : std::uint8_t {
#define MANA_ERRC_GROUP(name, condition, js_class_local, js_class_remote, summary) name,
#include "mana/core/errc.def"
};

// The wire close code an error closes the connection with.
CloseCode to_close_code(Errc e) noexcept;

// True when the error ends the connection (as opposed to a per-call failure
// such as invalid_argument that leaves the session usable).
bool is_fatal(Errc e) noexcept;

// What the error means to the application (its JS error class); unknown values
// give ErrcGroup::protocol.
ErrcGroup group_of(Errc e) noexcept;

// True when a client may try to resume after the connection closed with this
// code (transport-level losses); false for final closes.
bool is_resumable(CloseCode c) noexcept;

// The library error a client reports when the peer closed with this code
// (Errc::internal for codes the table does not list).
Errc errc_from_close(CloseCode c) noexcept;

std::string_view to_string(Errc e) noexcept;
std::string_view to_string(CloseCode c) noexcept;  // e.g. "FLOW_VIOLATION"
std::string_view to_string(ErrcGroup g) noexcept;  // e.g. "flow_control"
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
// Beast does. Each ErrcGroup matches one condition or none (`closed`).
enum class ErrcCondition : std::uint8_t {
#define MANA_ERRC_CONDITION(name, value, message) name = (value),
#include "mana/core/errc.def"
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
