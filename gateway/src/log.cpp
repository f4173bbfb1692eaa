// SPDX-License-Identifier: Apache-2.0
#include "log.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace mana::gateway {

namespace {

LogLevel g_level = LogLevel::info;

std::string_view level_name(LogLevel l) noexcept {
  switch (l) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - secs).count();
  const std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_log_level(LogLevel level) noexcept {
  g_level = level;
}

bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
  for (LogLevel l : {LogLevel::debug, LogLevel::info, LogLevel::warn, LogLevel::error}) {
    if (text == level_name(l)) {
      out = l;
      return true;
    }
  }
  return false;
}

namespace {

void write_line(LogLevel level, std::string_view event, nlohmann::json fields) noexcept {
  try {
    nlohmann::json line = nlohmann::json::object();
    line["ts"] = utc_now();
    line["level"] = level_name(level);
    line["event"] = std::string(event);
    if (fields.is_object()) {
      for (auto it = fields.begin(); it != fields.end(); ++it)
        line[it.key()] = it.value();
    }
    // Invalid UTF-8 (a hostile host name, say) is replaced, never fatal.
    std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    text.push_back('\n');
    std::fwrite(text.data(), 1, text.size(), stderr);
    std::fflush(stderr);
  } catch (...) {
    // Logging must never take the process down.
  }
}

}  // namespace

void log_event(LogLevel level, std::string_view event, nlohmann::json fields) noexcept {
  if (level < g_level) return;
  write_line(level, event, std::move(fields));
}

void log_always(std::string_view event, nlohmann::json fields) noexcept {
  write_line(LogLevel::info, event, std::move(fields));
}

}  // namespace mana::gateway
