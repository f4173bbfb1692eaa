#include "metrics.hpp"

#include <sstream>

namespace mana::gateway {

namespace {

void counter(std::ostringstream& o, const char* name, const char* help, std::uint64_t v) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
    << name << ' ' << v << '\n';
}

void gauge(std::ostringstream& o, const char* name, const char* help, std::uint64_t v) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n"
    << name << ' ' << v << '\n';
}

void labelled(std::ostringstream& o, const char* name, const char* help, const char* label,
              const std::map<std::string, std::uint64_t>& m) {
  o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n";
  // Label values are chosen by the gateway (fixed vocabulary), never by a client.
  for (const auto& [k, v] : m)
    o << name << '{' << label << "=\"" << k << "\"} " << v << '\n';
}

}  // namespace

void Metrics::observe_rtt(double seconds) {
  for (std::size_t i = 0; i < rtt_bounds.size(); ++i) {
    if (seconds <= rtt_bounds.at(i)) {
      rtt_buckets.at(i)++;
      break;
    }
  }
  rtt_count++;
  rtt_sum += seconds;
}

std::string Metrics::render() const {
  std::ostringstream o;
  counter(o, "mana_connections_total", "WebSocket connections accepted", connections_total);
  counter(o, "mana_accept_errors_total", "TCP accept failures (out of descriptors or memory)",
          accept_errors);
  gauge(o, "mana_connections_active", "WebSocket connections open", connections_active);
  counter(o, "mana_http_requests_total", "HTTP requests parsed", http_requests_total);
  labelled(o, "mana_http_rejects_total", "HTTP requests refused before the upgrade", "reason",
           http_rejects);
  counter(o, "mana_channels_total", "channels opened to a target", channels_total);
  gauge(o, "mana_channels_active", "channels with a live target connection", channels_active);
  o << "# HELP mana_payload_bytes_total channel payload bytes relayed\n"
       "# TYPE mana_payload_bytes_total counter\n"
    << "mana_payload_bytes_total{direction=\"to_target\"} " << bytes_to_target << '\n'
    << "mana_payload_bytes_total{direction=\"to_client\"} " << bytes_to_client << '\n';
  o << "# HELP mana_ws_frames_total WebSocket messages\n# TYPE mana_ws_frames_total counter\n"
    << "mana_ws_frames_total{direction=\"in\"} " << frames_in << '\n'
    << "mana_ws_frames_total{direction=\"out\"} " << frames_out << '\n';
  o << "# HELP mana_ws_bytes_total WebSocket message bytes\n# TYPE mana_ws_bytes_total counter\n"
    << "mana_ws_bytes_total{direction=\"in\"} " << ws_bytes_in << '\n'
    << "mana_ws_bytes_total{direction=\"out\"} " << ws_bytes_out << '\n';
  counter(o, "mana_credit_stalls_total", "target reads stopped for lack of client credit",
          credit_stalls);
  o << "# HELP mana_credit_stall_seconds_total time target reads spent stalled on credit\n"
       "# TYPE mana_credit_stall_seconds_total counter\n"
    << "mana_credit_stall_seconds_total " << static_cast<double>(credit_stall_ns) / 1e9 << '\n';
  counter(o, "mana_transport_pauses_total",
          "times the WebSocket outbound queue passed its high-water mark", transport_pauses);
  o << "# HELP mana_rtt_seconds round-trip time of the gateway's pings (core RTT samples)\n"
       "# TYPE mana_rtt_seconds histogram\n";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < rtt_bounds.size(); ++i) {
    cumulative += rtt_buckets.at(i);
    o << "mana_rtt_seconds_bucket{le=\"" << rtt_bounds.at(i) << "\"} " << cumulative << '\n';
  }
  o << "mana_rtt_seconds_bucket{le=\"+Inf\"} " << rtt_count << '\n'
    << "mana_rtt_seconds_sum " << rtt_sum << '\n'
    << "mana_rtt_seconds_count " << rtt_count << '\n';
  labelled(o, "mana_resumes_total", "resume attempts by outcome", "outcome", resumes);
  labelled(o, "mana_policy_rejections_total", "policy rejections by reason", "reason",
           policy_rejections);
  labelled(o, "mana_closes_total", "sessions closed, by close code", "code", closes);
  labelled(o, "mana_config_reloads_total", "SIGHUP reloads by outcome", "outcome", config_reloads);
  labelled(o, "mana_handover_total", "same-host handovers by outcome", "outcome", handovers);
  labelled(o, "mana_forwarded_resumes_total",
           "unknown resumes forwarded to the old process of a handover, by outcome", "outcome",
           forwarded_resumes);
  counter(o, "mana_forwarded_connections_total",
          "clients received forwarded from the new process of a handover", forwarded_in);
  gauge(o, "mana_draining", "1 while draining or stopping (/healthz answers 503)", draining);
  if (buffer_gauge) {
    const BufferGauge g = buffer_gauge();
    gauge(o, "mana_sessions_active", "sessions (attached or detached)", g.sessions);
    gauge(o, "mana_sessions_detached", "sessions waiting for a resume", g.detached);
    gauge(o, "mana_buffered_bytes_max",
          "largest bytes buffered by one session (replay + outbound queue + relay buffers)",
          g.max_session);
    gauge(o, "mana_buffered_bytes_total", "bytes buffered by all sessions", g.total);
    gauge(o, "mana_http_connections_active",
          "TCP connections in the HTTP phase (TLS handshake, request, upgrade)", g.http_phase);
  }
  return o.str();
}

}  // namespace mana::gateway
