// GET /debug/sessions (debug_view.hpp): per session its state and, per channel, the core's
// counters both ways (sent / acknowledged = replay start / limit, received / consumed / limit),
// the peer's rx at the last resume, the R1 payload cap, and the relay's phase and stall flags.
// Never tokens, never payload bytes.
#include "debug_view.hpp"

#include <boost/asio/ip/address.hpp>

#include "relay.hpp"
#include "session_registry.hpp"
#include "session.hpp"

namespace mana::gateway {

bool is_loopback_ip(const std::string& ip) {
  boost::system::error_code ec;
  const auto a = boost::asio::ip::make_address(ip, ec);
  if (ec) return false;
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).is_loopback();
  return a.is_loopback();
}

std::string query_param(std::string_view target, std::string_view name) {
  const auto q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const auto eq = kv.find('=');
    if (kv.substr(0, eq) == name && eq != std::string_view::npos)
      return std::string(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return {};
}

nlohmann::json Relay::debug_view() const {
  static const char* const phases[] = {"resolving", "connecting", "banner", "relaying", "closing"};
  return {{"phase", phases[static_cast<int>(phase_)]},
          {"reading", reading_},
          {"stalled", stalled_},
          {"target_eof", target_eof_},
          {"close_sent", close_sent_},
          {"banner_held", banner_.size()},
          {"pending_to_client", pending_.size() - pending_off_},
          {"queued_to_target", to_target_bytes_}};
}

nlohmann::json Session::debug_view() const {
  nlohmann::json chans = nlohmann::json::array();
  for (core::ChannelId id : core_.channel_ids()) {
    const auto st = core_.channel_stats(id);
    if (!st) continue;
    nlohmann::json c = {
        {"id", id},
        {"to_client",
         {{"sent", st->sent},
          {"limit", st->send_limit},
          {"replay_start", st->acked},
          {"replay_end", st->sent},
          {"available", core_.available(id)},
          {"payload_cap", st->payload_cap}}},
        {"from_client",
         {{"received", st->received}, {"consumed", st->consumed}, {"limit", st->recv_limit}}},
        {"peer_resume_rx", st->resume_rx ? nlohmann::json(*st->resume_rx) : nlohmann::json()}};
    if (auto it = relays_.find(id); it != relays_.end()) c["relay"] = it->second->debug_view();
    chans.push_back(std::move(c));
  }
  return {{"session", id_},
          {"principal", principal_},
          {"state", std::string(core::to_string(core_.state()))},
          {"attached", !conn_.expired()},
          {"resumes", core_.resume_count()},
          {"pause_bits", core_.pause_bits()},
          {"queued_output_bytes", core_.output_bytes()},
          {"channels", std::move(chans)}};
}

std::string SessionRegistry::debug_sessions(std::string_view principal) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, s] : sessions_)
    if (principal.empty() || s->principal() == principal) out.push_back(s->debug_view());
  return out.dump() + "\n";
}

}  // namespace mana::gateway
