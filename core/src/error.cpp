// SPDX-License-Identifier: Apache-2.0
// Errors of mana::core: every mapping of error.hpp, expanded from the rows of
// errc.def (docs/PROTOCOL.md, "Close codes"): the Errc and group rows as arrays
// indexed by their enum value, the close-code rows as an array searched by code.
#include "mana/core/error.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace mana::core {

namespace {

// ErrcCondition values by name, plus `none` (0) for groups that match no condition.
namespace cond_value {
constexpr int none = 0;
// `name` is a declarator, which cannot take parentheses.
// NOLINTNEXTLINE(bugprone-macro-parentheses)
#define MANA_ERRC_CONDITION(name, value, message) constexpr int name = (value);
#include "mana/core/errc.def"
}  // namespace cond_value

struct GroupRow {
  int condition;  // an ErrcCondition value, 0 for none
  std::string_view name;
};

// Indexed by the ErrcGroup value.
constexpr std::array group_rows = {
#define MANA_ERRC_GROUP(name, condition, js_class_local, js_class_remote, summary) \
  GroupRow{cond_value::condition, #name},
#include "mana/core/errc.def"
};

struct ErrcRow {
  CloseCode close;
  ErrcGroup group;
  bool fatal;
  std::string_view name;
};

// Indexed by the Errc value (the rows are in declaration order).
constexpr std::array errc_rows = {
#define MANA_ERRC(name, close_code, group, fatal, framing, summary) \
  ErrcRow{CloseCode::close_code, ErrcGroup::group, fatal, #name},
#include "mana/core/errc.def"
};

struct CloseRow {
  CloseCode code;
  std::string_view name;
  bool resumable;
  Errc on_receipt;
};

constexpr std::array close_rows = {
#define MANA_CLOSE_CODE(name, value, wire_name, resumable, errc_on_receipt) \
  CloseRow{CloseCode::name, wire_name, resumable, Errc::errc_on_receipt},
#include "mana/core/errc.def"
};

// The row of close code `c`, or nullptr for a code the table does not list.
constexpr const CloseRow* row_of(CloseCode c) noexcept {
  for (const CloseRow& row : close_rows) {
    if (row.code == c) return &row;
  }
  return nullptr;
}

// The row of `e`, or nullptr for a value outside the enum.
constexpr const ErrcRow* row_of(Errc e) noexcept {
  const auto i = static_cast<std::size_t>(e);
  return i < errc_rows.size() ? &errc_rows[i] : nullptr;
}

static_assert(row_of(Errc::ok)->close == CloseCode::normal && !row_of(Errc::ok)->fatal,
              "errc.def: ok closes normally and is not an error");
static_assert(errc_rows.back().name == "internal" && row_of(Errc::internal) == &errc_rows.back(),
              "errc.def: internal is the last Errc (tests iterate up to it)");

// The row of a std::error_code value of errc_category(), or nullptr (checked
// before the cast: Errc is 8 bits wide).
const ErrcRow* row_at(int ev) noexcept {
  if (ev < 0 || static_cast<std::size_t>(ev) >= errc_rows.size()) return nullptr;
  return row_of(static_cast<Errc>(ev));
}

// Condition of an Errc value, or 0 when it belongs to none.
int condition_of(int ev) noexcept {
  const ErrcRow* row = row_at(ev);
  return row == nullptr ? 0 : group_rows[static_cast<std::size_t>(row->group)].condition;
}

}  // namespace

CloseCode to_close_code(Errc e) noexcept {
  const ErrcRow* row = row_of(e);
  return row == nullptr ? CloseCode::internal : row->close;
}

bool is_fatal(Errc e) noexcept {
  const ErrcRow* row = row_of(e);
  return row == nullptr || row->fatal;
}

ErrcGroup group_of(Errc e) noexcept {
  const ErrcRow* row = row_of(e);
  return row == nullptr ? ErrcGroup::protocol : row->group;
}

bool is_resumable(CloseCode c) noexcept {
  const CloseRow* row = row_of(c);
  return row != nullptr && row->resumable;
}

Errc errc_from_close(CloseCode c) noexcept {
  const CloseRow* row = row_of(c);
  return row == nullptr ? Errc::internal : row->on_receipt;
}

std::string_view to_string(Errc e) noexcept {
  const ErrcRow* row = row_of(e);
  return row == nullptr ? "unknown" : row->name;
}

std::string_view to_string(CloseCode c) noexcept {
  const CloseRow* row = row_of(c);
  return row == nullptr ? "UNKNOWN" : row->name;
}

std::string_view to_string(ErrcGroup g) noexcept {
  const auto i = static_cast<std::size_t>(g);
  return i < group_rows.size() ? group_rows[i].name : "unknown";
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

class ErrcCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "mana.core"; }

  [[nodiscard]] std::string message(int ev) const override {
    const ErrcRow* row = row_at(ev);
    return std::string(row == nullptr ? "unknown" : row->name);
  }

  [[nodiscard]] std::error_condition default_error_condition(int ev) const noexcept override {
    const int cond = condition_of(ev);
    if (cond == 0) return {ev, *this};
    return {cond, errc_condition_category()};
  }
};

class ErrcConditionCategory final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "mana.core.condition"; }

  [[nodiscard]] std::string message(int ev) const override {
    switch (static_cast<ErrcCondition>(ev)) {
#define MANA_ERRC_CONDITION(name, value, message) \
  case ErrcCondition::name:                       \
    return message;
#include "mana/core/errc.def"
    }
    return "unknown condition";
  }

  [[nodiscard]] bool equivalent(const std::error_code& code,
                                int condition) const noexcept override {
    if (code.category() != errc_category()) return false;
    const int cond = condition_of(code.value());
    return cond != 0 && cond == condition;
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
