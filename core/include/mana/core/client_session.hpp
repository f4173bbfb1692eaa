// SPDX-License-Identifier: Apache-2.0
// ClientSession: the client side of the protocol (browser via wasm, mana-proxy
// natively).
//
// Invariants (in addition to SessionCore's)
//   C1  Nothing but hello is sent before hello_ok; hello is the first message
//       on every transport (with `resume` when a token is held).
//   C2  Channel ids are chosen here, increasing, never reused while in use.
//   C3  A resume lists exactly the channels whose open_ok was received and
//       that are not freed; pending opens are re-sent after hello_ok.
//   C4  After a final close (non-resumable code, resume rejected, or close())
//       the state is `closed` and every channel has been reported closed.
//
// Host loop: transport_open(now) when the WebSocket is open; feed receive()/
// receive_close()/transport_lost(); send every poll_output() message; handle
// poll_event(); call handle_timeout() at next_timeout(). On a resumable loss
// the state is `reconnecting`: open a new WebSocket and call transport_open()
// again (the host owns backoff).
#pragma once

#include <optional>
#include <string>

#include "mana/core/session_core.hpp"

namespace mana::core {

struct ClientConfig {
  std::string profile{default_profile_id};
  std::optional<Auth> auth;
  WindowConfig window;                            // server->client window
  std::size_t replay_capacity = 2 * 1024 * 1024;  // client->server unacked bytes
  Duration heartbeat = Duration::from_s(20);
  std::uint32_t heartbeat_misses = 3;
  Duration handshake_timeout = Duration::from_s(10);
  bool resume = true;
  SessionLimits limits;
  const WireProfile* custom_profile = nullptr;  // used when profile names it
};

struct OpenParams {
  Target target;
  std::string kind = "tcp";
  std::optional<UserSpec> user;
  std::optional<Term> term;
};

class ClientSession final : public SessionCore {
 public:
  ClientSession(ClientConfig cfg, Timestamp now);

  // The WebSocket is open: queue hello (with resume if a token is held).
  // Errors: invalid_state (local) unless connecting/reconnecting.
  Result<void> transport_open(Timestamp now);

  // Open a channel (state ready). Returns its id. Errors: invalid_state,
  // invalid_argument (local).
  Result<ChannelId> open_channel(const OpenParams& p, Timestamp now);
  Result<void> resize(ChannelId id, std::uint16_t cols, std::uint16_t rows, Timestamp now);
  Result<void> signal(ChannelId id, std::string_view sig, Timestamp now);

  // Adopts a resume token that an earlier page or process kept (the host's storage), before the
  // first transport_open(). The first hello then carries `resume` with this token and an empty
  // channel list, so the server frees every channel of that session at once (none is listed,
  // PROTOCOL.md §9.5 step 2) and continues the session on this transport; hello_ok's channel
  // entries are ignored and Ready has resumed = true. A token the server refuses closes with
  // 4011 as on any resume. Errors (local): invalid_state unless connecting with no channel and
  // resume enabled; invalid_argument unless 16..256 bytes of [A-Za-z0-9_-].
  Result<void> adopt_resume_token(std::string token);

  // Resume state a host may persist (e.g. in sessionStorage) and restore.
  [[nodiscard]] const std::optional<std::string>& resume_token() const noexcept { return token_; }
  [[nodiscard]] std::optional<HelloOk> server_hello() const { return hello_ok_; }
  // The route id of the last hello_ok (PROTOCOL.md §9.8): the host reconnects for a resume to
  // its URL with `?route=<id>`. Null when the server sent none or no hello_ok came yet.
  [[nodiscard]] const std::string* route() const noexcept {
    return hello_ok_ && hello_ok_->route ? &*hello_ok_->route : nullptr;
  }
  [[nodiscard]] std::uint32_t resume_count() const noexcept { return resumes_; }

 protected:
  bool on_control_gate(ControlMessage& m, Timestamp now) override;
  bool on_role_control(ControlMessage& m, Timestamp now) override;
  void on_transport_gone(CloseCode code, Origin origin, std::string_view reason,
                         Timestamp now) override;
  void on_role_timeout(Timestamp now) override;
  [[nodiscard]] std::optional<Timestamp> role_deadline() const override;

 private:
  void on_hello_ok(HelloOk&& h, Timestamp now);
  void resend_open(Channel& ch);

  ClientConfig cfg_;
  std::optional<std::string> token_;
  std::optional<HelloOk> hello_ok_;
  std::optional<Timestamp> handshake_deadline_;
  bool resuming_ = false;
  bool adopted_ = false;  // adopt_resume_token() before the first transport_open()
  ChannelId next_id_ = 1;
  std::uint32_t resumes_ = 0;
};

}  // namespace mana::core
