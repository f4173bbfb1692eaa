// Counters and gauges exported at /metrics in the Prometheus text format (version 0.0.4).
// Single-threaded: the gateway runs one io_context on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

namespace mana::gateway {

struct BufferGauge {
  std::uint64_t max_session = 0;  // largest buffered bytes of one session
  std::uint64_t total = 0;        // sum over all sessions
  std::uint64_t sessions = 0;
  std::uint64_t detached = 0;
};

class Metrics {
 public:
  // Counters.
  std::uint64_t connections_total = 0;    // WebSocket upgrades completed
  std::uint64_t connections_active = 0;   // WebSockets open now
  std::uint64_t http_requests_total = 0;  // every HTTP request parsed
  std::uint64_t channels_total = 0;       // channel opens accepted
  std::uint64_t channels_active = 0;      // relays with a live target socket
  std::uint64_t bytes_to_target = 0;      // client -> target payload bytes
  std::uint64_t bytes_to_client = 0;      // target -> client payload bytes
  std::uint64_t frames_in = 0;            // WebSocket messages received
  std::uint64_t frames_out = 0;           // WebSocket messages sent
  std::uint64_t ws_bytes_in = 0;          // WebSocket message bytes received
  std::uint64_t ws_bytes_out = 0;         // WebSocket message bytes sent
  std::uint64_t credit_stalls = 0;        // target reads stopped for lack of credit
  std::uint64_t credit_stall_ns = 0;      // time spent stalled
  std::uint64_t transport_pauses = 0;     // outbound queue above its high-water mark

  std::map<std::string, std::uint64_t> http_rejects;       // by reason
  std::map<std::string, std::uint64_t> resumes;            // by outcome
  std::map<std::string, std::uint64_t> policy_rejections;  // by reason
  std::map<std::string, std::uint64_t> closes;             // by close code

  // Filled at scrape time by the server.
  std::function<BufferGauge()> buffer_gauge;

  [[nodiscard]] std::string render() const;
};

}  // namespace mana::gateway
