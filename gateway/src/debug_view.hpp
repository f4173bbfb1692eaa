// GET /debug/sessions: a stalled channel explains itself. Off by default ([server]
// debug_sessions = true), answered to loopback peers only; docs/gateway.md.
#pragma once

#include <string>
#include <string_view>

namespace mana::gateway {

// True for 127.0.0.0/8 and ::1 (and IPv4-mapped loopback).
[[nodiscard]] bool is_loopback_ip(const std::string& ip);
// The value of `name` in the query string of `target` ("" when absent); no %-decoding
// (principals in tests are plain).
[[nodiscard]] std::string query_param(std::string_view target, std::string_view name);

}  // namespace mana::gateway
