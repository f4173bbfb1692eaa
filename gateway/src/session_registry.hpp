// SPDX-License-Identifier: Apache-2.0
// SessionRegistry: every Session of the process and the admission rules around them. Sessions and
// connections call back into it (Context::registry), never into the Listener or the Server:
//   - on_upgraded: a fresh WebSocket is admitted against the global and per-IP connection caps
//     ([limits] max_connections[_per_ip]; over: 4010) and gets its handshake Session;
//   - on_hello: JWT check (4003), max_sessions_per_principal (4010), then hello_ok with a resume
//     token registered in the ResumeTable;
//   - on_resume: the per-IP budget of failed resume attempts ([rate] resume_fail_*; spent: 4004
//     before any token lookup), the JWT check, then the token lookup; unknown, expired, spent and
//     foreign tokens all get the same 4011 "resume rejected";
//     During a same-host upgrade (handover.hpp) a resume whose token this process does not hold
//     is forwarded to the old process (forward_relay.hpp), which decides it; once the old one
//     has exited such a resume gets the uniform 4011 like any unknown token;
//   - remove_session / connection_closed: bookkeeping when a session ends or a socket closes.
// The registry also holds the process's phase, which the HTTP phase and the handshake consult:
//   running   everything as above;
//   draining  /healthz answers 503, a fresh hello is refused with 4010 "server draining" (a
//             balancer's retry lands elsewhere), resumes of sessions held here and the running
//             sessions go on (Listener: until they end or server.drain_timeout_ms);
//   stopping  no upgrade (503), no hello, no resume; every session was closed with 1001.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "context.hpp"
#include "mana/core/messages.hpp"

namespace mana::gateway {

class Session;
class Connection;

class SessionRegistry {
 public:
  enum class Phase : std::uint8_t { running, draining, stopping };

  explicit SessionRegistry(Context& ctx) : ctx_(ctx) {}
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // ---- called by sessions and connections ----------------------------------------
  void on_hello(const std::shared_ptr<Session>& s, const core::Hello& hello);
  void on_resume(const std::shared_ptr<Session>& fresh, const core::Hello& hello);
  void remove_session(std::uint64_t id);
  void connection_closed(const std::string& ip);
  // Upgrade finished: create the Connection's handshake Session or refuse with 4010.
  void on_upgraded(const std::shared_ptr<Connection>& c, const std::string& origin);

  // Admission for a new WebSocket (global and per-IP caps). Returns "" or the refusal reason.
  [[nodiscard]] std::string admit(const std::string& ip) const;
  void count_connection(const std::string& ip);

  // ---- called by the Listener ------------------------------------------------------
  // Draining: fresh hellos refused (4010), resumes and running sessions go on.
  void begin_drain() noexcept {
    if (phase_ == Phase::running) phase_ = Phase::draining;
  }
  // Stopping: no new upgrade, hello or resume; every session is closed with 1001 and `reason`.
  void stop_all(const std::string& reason);
  [[nodiscard]] bool stopping() const noexcept { return phase_ == Phase::stopping; }
  // /healthz answers 503 when this is true.
  [[nodiscard]] bool draining() const noexcept { return phase_ != Phase::running; }
  [[nodiscard]] Phase phase() const noexcept { return phase_; }
  [[nodiscard]] std::size_t session_count() const noexcept { return sessions_.size(); }
  [[nodiscard]] std::uint32_t connection_count() const noexcept { return connections_; }
  // Called (posted) whenever a session was removed while not running.
  void set_on_removed(std::function<void()> f) { on_removed_ = std::move(f); }

  // GET /debug/sessions (debug_view.cpp): both sides' view of every channel of the sessions of
  // `principal` (all sessions when empty), as JSON. No tokens, no payload bytes.
  [[nodiscard]] std::string debug_sessions(std::string_view principal) const;
  // The buffer gauges of /metrics, over every live session (http_phase is left 0).
  [[nodiscard]] BufferGauge buffer_gauge() const;

 private:
  Context& ctx_;
  Phase phase_ = Phase::running;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::map<std::string, std::uint32_t> per_ip_;
  std::uint32_t connections_ = 0;
  std::function<void()> on_removed_;

  // Handover (handover.hpp): relays `fresh`'s transport to the old process; false (nothing
  // changed but the stashed hello) when the old process is gone or the transport busy.
  bool forward(const std::shared_ptr<Session>& fresh, const std::string& principal);
};

}  // namespace mana::gateway
