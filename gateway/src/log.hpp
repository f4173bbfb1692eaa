// SPDX-License-Identifier: Apache-2.0
// Structured logs: one JSON object per line on stderr.
//
// Rule: a log line never carries a token, password, key or payload byte. Callers pass only
// metadata (ids, addresses, codes, counts, reasons chosen by the gateway or the core).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mana::gateway {

enum class LogLevel : std::uint8_t { debug, info, warn, error };

// Minimum level written (default info).
void set_log_level(LogLevel level) noexcept;
bool parse_log_level(std::string_view text, LogLevel& out) noexcept;

// Writes {"ts":"...","level":"...","event":event, ...fields} as one line. `fields` must be an
// object (or null). Never throws.
void log_event(LogLevel level, std::string_view event, nlohmann::json fields = nullptr) noexcept;

inline void log_info(std::string_view event, nlohmann::json fields = nullptr) noexcept {
  log_event(LogLevel::info, event, std::move(fields));
}
inline void log_warn(std::string_view event, nlohmann::json fields = nullptr) noexcept {
  log_event(LogLevel::warn, event, std::move(fields));
}
inline void log_debug(std::string_view event, nlohmann::json fields = nullptr) noexcept {
  log_event(LogLevel::debug, event, std::move(fields));
}

// An info line written at every log level: the lines that launchers wait for (`listening`,
// which reports the port bound for `--listen HOST:0`).
void log_always(std::string_view event, nlohmann::json fields = nullptr) noexcept;

}  // namespace mana::gateway
