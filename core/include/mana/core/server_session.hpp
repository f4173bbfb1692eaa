// SPDX-License-Identifier: Apache-2.0
// ServerSession: the server side of the protocol (mana-gateway, conformance
// reference code, simulation).
//
// Invariants (in addition to SessionCore's)
//   S1  hello_ok (or a close) is the first message sent; nothing else before.
//   S2  The host decides authentication (accept()/reject()), resume lookups
//       (resume() on the session the token names) and channel opens
//       (accept_open()/reject_open()); the core enforces everything else:
//       framing, limits, state, credit, channel cap, control-message rate.
//   S3  One transport at a time: resume() on an attached session drops the
//       old transport's queued output (the host closes that transport).
//   S4  A detached session keeps channels and replay buffers until
//       detached_at + resume_ttl, then closes with 4011 and frees everything.
//   S5  Tokens rotate on every hello_ok. The token a resume used stays valid
//       (previous_token()) until the first frame from the client on the new
//       transport; after that only the newest token is accepted.
#pragma once

#include <optional>
#include <string>

#include "mana/core/session_core.hpp"

namespace mana::core {

struct ServerConfig {
  std::string server_name = "mana-gateway";
  std::string route_id;  // non-empty: sent as hello_ok.route (is_route_id, PROTOCOL.md §9.8)
  WindowConfig window;   // client->server window
  std::size_t replay_capacity = 2 * 1024 * 1024;
  std::uint32_t max_channels = 4;
  std::uint32_t control_rate = 50;  // control messages per second
  std::uint32_t control_burst = 100;
  Duration heartbeat = Duration::from_s(20);
  std::uint32_t heartbeat_misses = 3;
  Duration idle_timeout = Duration::from_s(60);
  Duration handshake_timeout = Duration::from_s(10);
  Duration resume_ttl = Duration::from_s(60);
  SessionLimits limits;
  const ProfileRegistry* profiles = nullptr;  // null: the built-in profiles
};

struct AcceptParams {
  // New resume token (>= 128 bits from the host's CSPRNG, base64url). Empty:
  // resume not offered for this session.
  std::string resume_token;
};

class ServerSession final : public SessionCore {
 public:
  ServerSession(ServerConfig cfg, Timestamp now);

  // After event::HelloReceived: send hello_ok. Errors: invalid_state (local).
  Result<void> accept(const AcceptParams& p, Timestamp now);
  // Refuse the hello (or a resume): queue the close and end the session.
  void reject(Errc reason, std::string_view detail, Timestamp now);

  // Called on the *existing* session named by a resume token, with the hello
  // from event::ResumeRequested on the new transport. On success the session
  // is attached to the new transport: hello_ok (with `new_token`) and the
  // replay are queued here, and the host moves the new transport to this
  // session. Errors (the existing session is left unchanged):
  // resume_out_of_range, invalid_state (closed session).
  Result<void> resume(const Hello& hello, std::string new_token, Timestamp now);

  // After event::OpenRequested.
  Result<void> accept_open(ChannelId id, std::optional<std::string> resume_key, Timestamp now);
  Result<void> reject_open(ChannelId id, std::string_view code, std::string_view msg,
                           Timestamp now);
  // Report the remote program's exit (sent before close).
  Result<void> exit_channel(ChannelId id, std::optional<std::int32_t> code,
                            std::optional<std::string> sig, Timestamp now);

  [[nodiscard]] const std::string& resume_token() const noexcept { return token_; }
  // The token the client used for its last resume, still accepted until the
  // client proves (by any frame on the new transport) that it received the
  // rotated one: a hello_ok lost in a cut must not strand the session.
  [[nodiscard]] const std::string& previous_token() const noexcept { return previous_token_; }
  // Constant-time check of `token` against the current and previous token.
  [[nodiscard]] bool matches_token(std::string_view token) const noexcept;
  [[nodiscard]] const std::optional<Hello>& client_hello() const noexcept { return hello_; }
  [[nodiscard]] std::uint32_t resume_count() const noexcept { return resumes_; }

 protected:
  bool on_control_gate(ControlMessage& m, Timestamp now) override;
  bool on_role_control(ControlMessage& m, Timestamp now) override;
  void on_transport_gone(CloseCode code, Origin origin, std::string_view reason,
                         Timestamp now) override;
  void on_role_timeout(Timestamp now) override;
  [[nodiscard]] std::optional<Timestamp> role_deadline() const override;
  void on_peer_activity() override { previous_token_.clear(); }

 private:
  void on_hello(Hello&& h, Timestamp now);
  void on_open(Open&& o, Timestamp now);
  [[nodiscard]] ServerCaps caps() const;

  ServerConfig cfg_;
  std::optional<Hello> hello_;
  std::string token_;
  std::string previous_token_;
  TokenBucket control_bucket_;
  std::optional<Timestamp> handshake_deadline_;
  std::optional<Timestamp> detach_deadline_;
  std::uint32_t resumes_ = 0;
};

}  // namespace mana::core
