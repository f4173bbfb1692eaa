// SPDX-License-Identifier: Apache-2.0
// Internal to mana::core: the reading half of the control-message parser (messages.cpp). The
// depth pre-scan, the token/signal-name syntax, and the typed field reader `Fields` with its
// parse `Context` (the first error wins); read_id / read_token / read_resume are the readers more
// than one message shares. Definitions in message_fields.cpp. Not part of the public API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mana/core/messages.hpp"

namespace mana::core::msg_detail {

using Json = nlohmann::json;

// ---- pre-scan --------------------------------------------------------------

// True when objects/arrays in `text` nest deeper than `limit` (the top-level
// value is depth 1), ignoring brackets inside strings. Stops at the first
// bracket beyond the limit. Works on invalid JSON too
// (the parser reports that afterwards).
bool depth_exceeds(std::string_view text, std::size_t limit);

// ---- field reader ----------------------------------------------------------

// A resume token: 16..256 characters [A-Za-z0-9_-].
bool is_token(std::string_view s);
// A signal name: 1..32 characters [A-Z0-9].
bool is_sig(std::string_view s);

// Shared state of one parse: the first error wins, later reads are no-ops.
struct Context {
  const ParseLimits& limits;
  std::optional<Error> error;

  void fail(Errc code, const std::string& path, std::string_view what) {
    if (error) return;
    std::string detail = path;
    detail += ": ";
    detail += what;
    error = make_error(code, Origin::remote, std::move(detail));
  }
};

// Typed access to the members of one JSON object. Every accessor checks
// presence, type and range; on failure it records the error in the context
// and returns a default value, and once an error is recorded every accessor
// returns defaults without looking at the JSON.
class Fields {
 public:
  Fields(Context& ctx, const Json& obj, std::string path)
      : ctx_(ctx), obj_(obj), path_(std::move(path)) {}

  [[nodiscard]] bool failed() const { return ctx_.error.has_value(); }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] Context& context() const { return ctx_; }

  [[nodiscard]] std::string field_path(std::string_view key) const {
    std::string p = path_;
    if (!p.empty()) p += '.';
    p += key;
    return p;
  }

  // Member `key` or nullptr (missing). Never records an error.
  [[nodiscard]] const Json* find(std::string_view key) const {
    if (failed()) return nullptr;
    const auto it = obj_.find(std::string(key));
    return it == obj_.end() ? nullptr : &*it;
  }

  // Member `key`; records missing_field when absent.
  const Json* require(std::string_view key) {
    const Json* v = find(key);
    if (v == nullptr && !failed()) ctx_.fail(Errc::missing_field, field_path(key), "missing");
    return v;
  }

  std::uint64_t req_uint(std::string_view key, std::uint64_t lo, std::uint64_t hi) {
    const Json* v = require(key);
    if (v == nullptr) return lo;
    return check_uint(*v, field_path(key), lo, hi).value_or(lo);
  }

  std::optional<std::uint64_t> opt_uint(std::string_view key, std::uint64_t lo, std::uint64_t hi) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return check_uint(*v, field_path(key), lo, hi);
  }

  std::optional<std::int32_t> opt_int32(std::string_view key) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    const std::string p = field_path(key);
    if (v->is_number_unsigned()) {
      const auto u = v->get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max())) {
        ctx_.fail(Errc::out_of_range, p, "out of range");
        return std::nullopt;
      }
      return static_cast<std::int32_t>(u);
    }
    if (v->is_number_integer()) {
      const auto s = v->get<std::int64_t>();
      if (s < std::numeric_limits<std::int32_t>::min() ||
          s > std::numeric_limits<std::int32_t>::max()) {
        ctx_.fail(Errc::out_of_range, p, "out of range");
        return std::nullopt;
      }
      return static_cast<std::int32_t>(s);
    }
    ctx_.fail(Errc::wrong_type, p, "wrong type (expected integer)");
    return std::nullopt;
  }

  std::string req_string(std::string_view key, std::size_t min_len = 0,
                         std::size_t max_len = std::numeric_limits<std::size_t>::max()) {
    const Json* v = require(key);
    if (v == nullptr) return {};
    return check_string(*v, field_path(key), min_len, max_len).value_or(std::string());
  }

  std::optional<std::string> opt_string(
      std::string_view key, std::size_t min_len = 0,
      std::size_t max_len = std::numeric_limits<std::size_t>::max()) {
    const Json* v = find(key);
    if (v == nullptr) return std::nullopt;
    return check_string(*v, field_path(key), min_len, max_len);
  }

  bool opt_bool(std::string_view key, bool absent) {
    const Json* v = find(key);
    if (v == nullptr) return absent;
    if (!v->is_boolean()) {
      ctx_.fail(Errc::wrong_type, field_path(key), "wrong type (expected boolean)");
      return absent;
    }
    return v->get<bool>();
  }

  // Object member; nullptr when absent (optional) or on error.
  const Json* object(std::string_view key, bool required) {
    const Json* v = required ? require(key) : find(key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) {
      ctx_.fail(Errc::wrong_type, field_path(key), "wrong type (expected object)");
      return nullptr;
    }
    return v;
  }

  const Json* array(std::string_view key, bool required) {
    const Json* v = required ? require(key) : find(key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) {
      ctx_.fail(Errc::wrong_type, field_path(key), "wrong type (expected array)");
      return nullptr;
    }
    return v;
  }

  std::optional<std::uint64_t> check_uint(const Json& v, const std::string& p, std::uint64_t lo,
                                          std::uint64_t hi) {
    std::uint64_t u = 0;
    if (v.is_number_unsigned()) {
      u = v.get<std::uint64_t>();
    } else if (v.is_number_integer()) {
      // Signed storage: negative values, and "-0".
      const auto s = v.get<std::int64_t>();
      if (s < 0) {
        ctx_.fail(Errc::out_of_range, p, "out of range");
        return std::nullopt;
      }
      u = static_cast<std::uint64_t>(s);
    } else {
      ctx_.fail(Errc::wrong_type, p, "wrong type (expected integer)");
      return std::nullopt;
    }
    if (u < lo || u > hi) {
      ctx_.fail(Errc::out_of_range, p, "out of range");
      return std::nullopt;
    }
    return u;
  }

  std::optional<std::string> check_string(const Json& v, const std::string& p, std::size_t min_len,
                                          std::size_t max_len) {
    if (!v.is_string()) {
      ctx_.fail(Errc::wrong_type, p, "wrong type (expected string)");
      return std::nullopt;
    }
    const auto* s = v.get_ptr<const std::string*>();
    if (s->size() < min_len || s->size() > max_len) {
      ctx_.fail(Errc::out_of_range, p, "out of range");
      return std::nullopt;
    }
    return *s;
  }

 private:
  Context& ctx_;
  const Json& obj_;
  std::string path_;
};

ChannelId read_id(Fields& f);

// Token of hello.resume / hello_ok.resume: 16..256 chars [A-Za-z0-9_-].
std::string read_token(Fields& f);

// {token, channels: [{id, rx, credit, closed?}]}: at most max_resume_channels
// entries with unique ids.
void read_resume(Fields& f, std::string& token, std::vector<ResumeChannel>& channels);

}  // namespace mana::core::msg_detail
