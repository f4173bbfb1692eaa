// SPDX-License-Identifier: Apache-2.0
// SessionCore: the machinery ClientSession and ServerSession share — channel
// table, credit in both directions, replay buffers, heartbeats, the outbound
// message queue, the event queue, the state machine and the dispatch of the
// control messages both roles receive (close, flow, ping, pong).
//
// Invariants (checked by tests and the simulation harness)
//   I1  Output is pulled: nothing is written anywhere; poll_output() hands out
//       whole WebSocket messages in the order they must be sent.
//   I2  A fatal error queues the close message first, then reports Closed.
//       After Closed{resumable=false} the session emits no further output.
//   I3  Per channel and direction: send.sent() == replay.end_offset(); the
//       sender never sends past send.limit(); replay.size() <= replay.capacity().
//   I4  Receive side: consumed <= received <= limit; credit is granted only for
//       consumed bytes and never while a pause reason is set.
//   I5  While no transport is attached (reconnecting / detached) no message is
//       queued; data written meanwhile goes to the replay buffer and is sent,
//       together with everything the peer has not acknowledged, after resume.
//   I6  The core never reads a clock: every time-dependent call takes `now`.
//   I7  A control message is dispatched once (session_control.cpp): the role's
//       gate first (handshake messages, states that allow nothing else, the
//       server's rate limit), then the shared messages here, then the role's
//       own; a type neither handles closes with 4009 unexpected_message.
//   I8  Every state change is a row of allowed_transitions (session_state.hpp);
//       debug and fuzz builds check it in set_state and abort otherwise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mana/core/error.hpp"
#include "mana/core/events.hpp"
#include "mana/core/flow.hpp"
#include "mana/core/messages.hpp"
#include "mana/core/replay_buffer.hpp"
#include "mana/core/result.hpp"
#include "mana/core/session_state.hpp"
#include "mana/core/small_queue.hpp"
#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

namespace mana::test {
struct SessionProbe;  // tests/unit/session_state_test.cpp: reaches change_state()
}  // namespace mana::test

namespace mana::core {

struct SessionLimits {
  FrameLimits frame;              // what we accept
  ParseLimits parse;              // control JSON limits
  std::size_t max_events = 4096;  // bound on queued advisory events (diagnostic, policy)
};

class SessionCore {
 public:
  SessionCore(const SessionCore&) = delete;
  SessionCore& operator=(const SessionCore&) = delete;
  virtual ~SessionCore() = default;

  [[nodiscard]] SessionState state() const noexcept { return state_; }
  [[nodiscard]] Role role() const noexcept { return is_server_ ? Role::server : Role::client; }

  // ---- inputs ---------------------------------------------------------------

  // One WebSocket message from the peer (text or binary). Protocol violations
  // close the connection (close message queued, then event::Closed).
  void receive(MessageType type, ByteView message, Timestamp now);
  // The peer's close frame arrived.
  void receive_close(std::uint16_t code, std::string_view reason, Timestamp now);
  // The transport failed without a close frame (TCP reset, network gone).
  void transport_lost(Timestamp now);
  // Timers: call handle_timeout(now) when now >= next_timeout().
  [[nodiscard]] std::optional<Timestamp> next_timeout() const;
  void handle_timeout(Timestamp now);

  // ---- outputs --------------------------------------------------------------

  std::optional<OutMessage> poll_output();
  [[nodiscard]] bool has_output() const noexcept { return !out_.empty(); }
  // Bytes the queued messages hold themselves (OutMessage::owned_size(): control
  // messages, data headers, data payloads copied into `data`). Payload bytes
  // shared with a replay buffer (PayloadPart) are not counted here: they are
  // replay_bytes(), so output_bytes() + total_replay_bytes() counts each byte
  // once.
  [[nodiscard]] std::size_t output_bytes() const noexcept { return out_bytes_; }

  // Shared payloads (off by default): data messages of a raw-payload profile
  // (WireProfile::raw_payload(): mana.v1, lenpfx.v1) carry only their header in
  // OutMessage::data and reference the payload in the channel's replay buffer
  // through OutMessage::parts, both when first sent and when retransmitted
  // after a resume; nothing is copied. The host must send `data` followed by
  // every part and may keep the message as long as it likes: parts keep their
  // memory alive. Other profiles (json-base64.v1 transforms the payload) keep
  // encoding into `data`. Applies to messages queued after the call.
  void set_shared_payloads(bool on) noexcept { shared_payloads_ = on; }
  [[nodiscard]] bool shared_payloads() const noexcept { return shared_payloads_; }
  std::optional<Event> poll_event();
  [[nodiscard]] bool has_event() const noexcept { return !events_.empty(); }
  // Advisory events dropped because the host did not drain them in time.
  [[nodiscard]] std::uint64_t dropped_events() const noexcept { return dropped_events_; }

  // ---- channels (both sides) ------------------------------------------------

  // Queue up to available(id) bytes of `data`; returns how many were accepted
  // (0 when out of credit: wait for event::ChannelWritable). Errors:
  // unknown_channel / invalid_state (local).
  Result<std::size_t> write(ChannelId id, Stream stream, ByteView data, Timestamp now);
  // Bytes write() would accept now.
  [[nodiscard]] std::uint64_t available(ChannelId id) const noexcept;
  // The application consumed `n` bytes delivered by event::ChannelData;
  // credit is granted (batched) unless paused. Errors: unknown_channel,
  // invalid_argument (local).
  Result<void> consume(ChannelId id, std::uint64_t n, Timestamp now);
  // Close a channel (sends close once; the id is freed when the peer's close
  // arrives). Errors: unknown_channel (local).
  Result<void> close_channel(ChannelId id, std::string_view reason, Timestamp now);
  // Connection-wide pause reasons: withhold credit grants while any is set.
  void set_paused(PauseReason reason, bool on, Timestamp now);
  [[nodiscard]] std::uint8_t pause_bits() const noexcept { return pause_.bits(); }

  // Close the connection for good (final, not resumable).
  void close(CloseCode code, std::string_view reason, Timestamp now);

  // ---- observation ----------------------------------------------------------

  [[nodiscard]] std::optional<Duration> rtt() const noexcept { return srtt_; }
  // The newest raw RTT sample (reported by DiagCode::rtt_sample), for host histograms.
  [[nodiscard]] std::optional<Duration> last_rtt_sample() const noexcept {
    return last_rtt_sample_;
  }
  [[nodiscard]] std::size_t channel_count() const noexcept { return channels_.size(); }
  [[nodiscard]] bool has_channel(ChannelId id) const noexcept { return channels_.count(id) != 0; }
  [[nodiscard]] std::vector<ChannelId> channel_ids() const;
  // Bytes held for a channel: replay buffer (sent, unacknowledged).
  [[nodiscard]] std::size_t replay_bytes(ChannelId id) const noexcept;
  [[nodiscard]] std::size_t total_replay_bytes() const noexcept;
  struct ChannelStats {
    std::uint64_t sent = 0, send_limit = 0, acked = 0;
    std::uint64_t received = 0, consumed = 0, recv_limit = 0;
    std::uint64_t window = 0;
    std::optional<std::uint64_t> resume_rx;  // the peer's rx at the last resume
    std::size_t payload_cap = 0;             // R1 cap of data payloads (0: maxFrame)
  };
  [[nodiscard]] std::optional<ChannelStats> channel_stats(ChannelId id) const noexcept;
  [[nodiscard]] const WireProfile& profile() const noexcept { return *profile_; }
  // Smallest payload a channel's data messages shrink to when resumes show no
  // progress (session_data.cpp, R1).
  static constexpr std::size_t min_payload_cap = 1024;

 protected:
  struct Channel {
    explicit Channel(ChannelId cid, WindowConfig wc, std::size_t replay_cap)
        : id(cid), recv(wc), replay(replay_cap) {}
    ChannelId id;
    bool acked = false;  // open_ok exchanged
    bool local_close_sent = false;
    bool remote_close_received = false;
    bool exit_received = false;
    std::optional<Exit> exit_sent;
    std::string close_reason_sent;
    bool send_unlimited = false;  // legacy peer without bidi credit
    bool want_writable = false;   // a write was cut short by credit
    SendWindow send;
    ReceiveWindow recv;
    ReplayBuffer replay;
    std::optional<Resize> last_resize;
    std::optional<Open> open_request;  // client: kept to re-send after resume
    // Progress under repeated cuts (session_data.cpp, R1): the peer's rx at the
    // previous resume, and the largest data payload this channel sends now
    // (0: as the peer's maxFrame allows).
    std::optional<std::uint64_t> resume_rx;
    std::size_t payload_cap = 0;
  };

  SessionCore(bool is_server, SessionLimits limits, Timestamp now);

  // Hooks for the two roles.
  // Control dispatch (I7). Both hooks return true when they took the message:
  // handled it, or failed the session because of it.
  // The gate runs first, for every control message: the handshake messages
  // (hello, hello_ok), states in which nothing else is allowed, rate limits.
  virtual bool on_control_gate(ControlMessage& m, Timestamp now) = 0;
  // After the shared messages: the role's own (client: open_ok, open_err,
  // exit; server: open, resize, signal). False for a type the role never
  // receives (the core then closes with 4009).
  virtual bool on_role_control(ControlMessage& m, Timestamp now) = 0;
  virtual void on_transport_gone(CloseCode code, Origin origin, std::string_view reason,
                                 Timestamp now) = 0;
  virtual void on_role_timeout(Timestamp now) = 0;
  [[nodiscard]] virtual std::optional<Timestamp> role_deadline() const = 0;
  // A frame arrived while ready (used by the server to retire the previous token).
  virtual void on_peer_activity() {}

  // Helpers for derived classes.
  // Changes the state (no-op when unchanged) and reports event::StateChanged.
  // In checked builds (transitions_checked()) a change the table does not
  // allow is a library bug: transition_violation() aborts (I8).
  void set_state(SessionState s, Timestamp now);
  void emit(Event e);
  void diag(DiagCode c, Timestamp now, std::string detail = {});
  void send_control(const ControlMessage& m);
  void send_bootstrap(const ControlMessage& m);  // hello / hello_ok: plain JSON text
  void queue_data(Channel& ch, Stream stream, ByteView data);
  // Largest payload of one data message of `ch` (peer's maxFrame, payload cap).
  [[nodiscard]] std::size_t payload_limit(const Channel& ch) const noexcept;
  // The peer acknowledged new bytes of `ch`: a payload cap grows back (R1).
  void on_acknowledged(Channel& ch) noexcept;
  // Data messages of at most the peer's maxFrame whose payload is `parts`
  // (shared payloads; a message may span several parts, a part several messages).
  void queue_shared_data(const Channel& ch, Stream stream, std::vector<PayloadPart>&& parts);
  // A data message may be queued now (transport attached, session ready).
  [[nodiscard]] bool can_queue_data() const noexcept {
    return attached_ && state_ == SessionState::ready && profile_active_;
  }
  // Data is sent as shared payloads (set_shared_payloads and a raw profile).
  [[nodiscard]] bool sharing_payloads() const noexcept {
    return shared_payloads_ && profile_->raw_payload();
  }
  // Fatal protocol error: queue close, release channels, report Closed.
  void fail(const Error& e, Timestamp now);
  // Shut the connection down (close message queued if `send_frame`).
  void finish(CloseCode code, Origin origin, Errc err, std::string_view reason, bool send_frame,
              Timestamp now);
  void release_all_channels(std::string_view reason, Origin origin);
  Channel* find(ChannelId id) noexcept;
  const Channel* find(ChannelId id) const noexcept;
  Channel& add_channel(ChannelId id);
  void free_channel(ChannelId id, std::string_view reason, Origin origin);
  void maybe_grant(Channel& ch, Timestamp now, bool force);
  void grant_all(Timestamp now, bool force);

  // Resume helpers.
  [[nodiscard]] ResumeChannel resume_entry(const Channel& ch) const;
  // Validate the peer's position for `ch` (replay range, credit covers replay).
  [[nodiscard]] Result<void> check_resume_entry(const Channel& ch, const ResumeChannel& e) const;
  // Apply the peer's position: trim, reset send window, retransmit, re-send exit/close.
  void apply_resume_entry(Channel& ch, const ResumeChannel& e, Timestamp now);
  void drop_output() noexcept;
  void attach_transport(Timestamp now);

  const bool is_server_;
  SessionLimits limits_;
  const WireProfile* profile_;
  bool profile_active_ = false;  // false: bootstrap (hello / hello_ok as JSON text)
  bool attached_ = false;        // a transport is attached
  SessionState state_;
  std::map<ChannelId, Channel> channels_;
  PauseSet pause_;
  WindowConfig window_cfg_;
  std::size_t replay_capacity_ = 2 * 1024 * 1024;
  std::uint32_t peer_max_frame_ = 1 << 20;
  bool peer_bidi_ = true;

  // Heartbeats.
  Duration heartbeat_ = Duration::from_s(20);
  std::uint32_t heartbeat_misses_ = 3;
  Timestamp last_rx_;
  Timestamp last_tx_;
  std::optional<Duration> srtt_;
  std::optional<Duration> last_rtt_sample_;
  std::uint64_t pings_outstanding_ = 0;

 private:
  friend struct mana::test::SessionProbe;

  void dispatch_frame(Frame&& f, Timestamp now);
  // I7: gate, shared messages, role messages, else 4009 (session_control.cpp).
  void dispatch_control(ControlMessage&& m, Timestamp now);
  // Messages both roles receive: data (session_core.cpp), close, flow, ping,
  // pong (session_control.cpp).
  void handle_data(DataFrame&& f, Timestamp now);
  void handle_flow(const Flow& f, Timestamp now);
  void handle_close(const Close& c, Timestamp now);
  void handle_ping(const Ping& p, Timestamp now);
  void handle_pong(const Pong& p, Timestamp now);
  // set_state's checked step: an error instead of the abort for a change the
  // table does not allow (checked builds only; the state is left unchanged).
  Result<void> change_state(SessionState s, Timestamp now);
  SmallQueue<OutMessage> out_;
  std::size_t out_bytes_ = 0;
  bool shared_payloads_ = false;
  SmallQueue<Event> events_;
  std::size_t advisory_events_ = 0;
  std::uint64_t dropped_events_ = 0;
};

}  // namespace mana::core
