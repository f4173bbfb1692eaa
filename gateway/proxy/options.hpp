// mana-proxy command line: parsing and validation (no I/O besides reading the token file).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mana/host/ws_url.hpp"

namespace mana::proxy {

using host::WsUrl;

struct Options {
  WsUrl url;
  std::string url_text;
  std::string token_file;  // bearer token (JWT); empty: auth scheme "none"
  std::string origin;      // Origin header; empty: none sent
  std::string profile = "mana.v1";
  std::string ca_file;  // wss: extra trust anchors (PEM); system store otherwise
  std::string target_host;
  std::uint16_t target_port = 0;
  std::uint32_t connect_timeout_ms = 10000;    // TCP + TLS + WebSocket handshake per attempt
  std::uint32_t reconnect_min_ms = 100;        // first backoff step
  std::uint32_t reconnect_max_ms = 5000;       // backoff ceiling
  std::uint32_t reconnect_timeout_ms = 60000;  // give up resuming after this long
  bool verbose = false;
};

enum class ParseOutcome : std::uint8_t { run, help, version, error };

struct ParseResult {
  ParseOutcome outcome = ParseOutcome::error;
  std::string message;  // error text when outcome == error
};

ParseResult parse_args(const std::vector<std::string>& args, Options& out);

// Reads the bearer token: whole file, surrounding whitespace trimmed, must be non-empty,
// printable ASCII and at most 8192 bytes. Returns an error message, or nullopt on success.
std::optional<std::string> read_token_file(const std::string& path, std::string& token);

// Backoff before reconnect attempt `attempt` (0-based): min * 2^attempt capped at max, then
// "equal jitter" (half fixed, half random) using `unit` in [0, 1).
std::uint32_t backoff_ms(std::uint32_t attempt, std::uint32_t min_ms, std::uint32_t max_ms,
                         double unit);

extern const char* const help_text;

}  // namespace mana::proxy
