// SPDX-License-Identifier: Apache-2.0
// Session: one ServerSession (the protocol) plus its relays (target sockets), bound to at most
// one Connection (WebSocket) at a time. A resume moves a Connection to an existing Session.
//
// Everything protocol happens in the core; this class pumps its events (poll_event), hands its
// output (poll_output) to the attached Connection, and arms one timer at next_timeout().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "context.hpp"
#include "free_budget.hpp"
#include "mana/core/server_session.hpp"
#include "mana/host/session_timer.hpp"

namespace mana::gateway {

class Connection;
class Relay;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Context& ctx, std::string client_ip, std::string origin);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- transport side ---------------------------------------------------------
  void attach(const std::shared_ptr<Connection>& c);
  [[nodiscard]] std::shared_ptr<Connection> connection() const { return conn_.lock(); }
  void on_message(core::MessageType type, core::ByteView data);
  // A WebSocket ping or pong frame (RFC 6455; Beast answers pings itself). Called from inside
  // the WebSocket read: a close it causes is posted to run after it.
  void on_transport_control();
  void on_close_frame(std::uint16_t code, const std::string& reason);
  void on_transport_lost();
  void on_outbound_overflow();
  void set_transport_paused(bool on);
  // Stop or drain timeout: close for good with 1001 and `reason`.
  void shutdown(const std::string& reason);
  // A resume moved this (handshake) session's transport elsewhere: stop without output.
  void discard();
  // The first message of the transport as received (the hello), kept only until the hello is
  // answered: a handover forwards it (forward_relay.hpp). Moves it out.
  std::string take_first_message() { return std::move(first_); }
  [[nodiscard]] bool first_message_text() const noexcept { return first_text_; }

  // ---- relay side -------------------------------------------------------------
  core::ServerSession& core() noexcept { return core_; }
  void pump();
  // A relay whose open was refused (open_err frees the id without ChannelClosed).
  void remove_relay(core::ChannelId id, const Relay* r);
  // The relay handed `n` bytes from its target to the core: they refill the free-message budget.
  void on_payload_to_client(std::uint64_t n) noexcept { free_budget_.refill(n); }

  // ---- identity ---------------------------------------------------------------
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::string& client_ip() const noexcept { return ip_; }
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
  [[nodiscard]] const std::string& principal() const noexcept { return principal_; }
  [[nodiscard]] bool authenticated() const noexcept { return authenticated_; }
  void set_principal(std::string p, std::optional<std::vector<std::string>> targets) {
    principal_ = std::move(p);
    targets_ = std::move(targets);
    authenticated_ = true;
  }
  [[nodiscard]] bool live() const noexcept {
    return !discarded_ && core_.state() != core::SessionState::closed;
  }
  [[nodiscard]] std::uint64_t buffered_bytes() const;
  // This session's state and channels for GET /debug/sessions (debug_view.cpp).
  [[nodiscard]] nlohmann::json debug_view() const;

 private:
  void handle(core::Event& e);
  void on_open(const core::Open& o);
  // A per-IP rate limit ([rate]) or this session's free-message budget was exceeded: policy
  // event, metrics (reason rate_<limit>), close 4004.
  void rate_limited(const char* limit);
  // One message that moved no payload (free_budget.hpp): over the budget, close 4004.
  void spend_free_message(core::Timestamp now);
  void on_closed(const core::event::Closed& c);
  void flush_output();
  void arm_timer();
  void detach_connection();

  Context& ctx_;
  const std::uint64_t id_;
  std::string ip_;
  std::string origin_;
  std::string principal_;
  std::optional<std::vector<std::string>> targets_;
  bool authenticated_ = false;
  core::ServerSession core_;
  std::weak_ptr<Connection> conn_;
  std::map<core::ChannelId, std::shared_ptr<Relay>> relays_;
  host::SessionTimer timer_;
  FreeMessageBudget free_budget_;
  std::uint64_t delivered_ = 0;  // payload bytes the message being received delivered
  bool free_close_posted_ = false;
  bool pumping_ = false;
  bool again_ = false;
  bool discarded_ = false;
  bool first_seen_ = false;
  bool first_text_ = false;
  std::string first_;
  bool finished_ = false;
};

core::ServerConfig make_server_config(const Config& cfg, std::string route_id = {});

}  // namespace mana::gateway
