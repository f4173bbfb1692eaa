// Counters and gauges exported at /metrics in the Prometheus text format (version 0.0.4).
// Single-threaded: the gateway runs one io_context on one thread.
#pragma once

#include <array>
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
  std::uint64_t http_phase = 0;  // TCP connections not yet upgraded
};

class Metrics {
 public:
  // Counters.
  std::uint64_t connections_total = 0;    // WebSocket upgrades completed
  std::uint64_t accept_errors = 0;        // accept() failures (EMFILE, ENFILE, ENOMEM...)
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

  // RTT histogram (seconds) from the core's RTT samples (pong for one of our pings).
  static constexpr std::array<double, 12> rtt_bounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                     0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  std::array<std::uint64_t, rtt_bounds.size()> rtt_buckets{};  // non-cumulative counts
  std::uint64_t rtt_count = 0;
  double rtt_sum = 0;
  void observe_rtt(double seconds);

  std::map<std::string, std::uint64_t> http_rejects;       // by reason
  std::map<std::string, std::uint64_t> resumes;            // by outcome
  std::map<std::string, std::uint64_t> policy_rejections;  // by reason
  std::map<std::string, std::uint64_t> closes;             // by close code
  std::map<std::string, std::uint64_t> config_reloads;     // SIGHUP, by outcome (ok, error)
  // Same-host upgrade (handover.hpp): handovers by outcome (taken / handed_over / refused_* /
  // failed), resumes forwarded to the old process by outcome (forwarded / old_gone / failed),
  // and clients this (old) process received forwarded.
  std::map<std::string, std::uint64_t> handovers;
  std::map<std::string, std::uint64_t> forwarded_resumes;
  std::uint64_t forwarded_in = 0;
  std::uint64_t draining = 0;  // 1 from SIGTERM (drain or stop) to exit

  // Filled at scrape time by the server.
  std::function<BufferGauge()> buffer_gauge;

  [[nodiscard]] std::string render() const;
};

}  // namespace mana::gateway
