// SPDX-License-Identifier: Apache-2.0
#include "mana/core/session_core.hpp"

#include <algorithm>
#include <string>
#include <utility>

#include "channel_detail.hpp"

namespace mana::core {

std::string_view to_string(SessionState s) noexcept {
  switch (s) {
    case SessionState::connecting:
      return "connecting";
    case SessionState::awaiting_hello:
      return "awaiting_hello";
    case SessionState::authenticating:
      return "authenticating";
    case SessionState::ready:
      return "ready";
    case SessionState::reconnecting:
      return "reconnecting";
    case SessionState::detached:
      return "detached";
    case SessionState::closed:
      return "closed";
  }
  return "unknown";
}

std::string_view to_string(PolicyKind k) noexcept {
  switch (k) {
    case PolicyKind::flow_pause:
      return "flow_pause";
    case PolicyKind::flow_resume:
      return "flow_resume";
    case PolicyKind::credit_grant:
      return "credit_grant";
    case PolicyKind::rate_limited:
      return "rate_limited";
    case PolicyKind::channel_limit:
      return "channel_limit";
  }
  return "unknown";
}

std::string_view to_string(DiagCode c) noexcept {
  switch (c) {
    case DiagCode::hello_sent:
      return "hello_sent";
    case DiagCode::hello_ok:
      return "hello_ok";
    case DiagCode::resume_requested:
      return "resume_requested";
    case DiagCode::resume_accepted:
      return "resume_accepted";
    case DiagCode::resume_rejected:
      return "resume_rejected";
    case DiagCode::token_rotated:
      return "token_rotated";
    case DiagCode::transport_lost:
      return "transport_lost";
    case DiagCode::transport_superseded:
      return "transport_superseded";
    case DiagCode::ping_sent:
      return "ping_sent";
    case DiagCode::pong_received:
      return "pong_received";
    case DiagCode::heartbeat_missed:
      return "heartbeat_missed";
    case DiagCode::rtt_sample:
      return "rtt_sample";
    case DiagCode::replayed:
      return "replayed";
    case DiagCode::ping_received:
      return "ping_received";
  }
  return "unknown";
}

SessionCore::SessionCore(bool is_server, SessionLimits limits, Timestamp now)
    : is_server_(is_server),
      limits_(limits),
      profile_(&mana_v1_profile()),
      state_(initial_state(is_server ? Role::server : Role::client)),
      last_rx_(now),
      last_tx_(now) {}

// ---- events and output --------------------------------------------------------

void SessionCore::emit(Event e) {
  // Only advisory events (diagnostics, policy notices) are ever dropped, and
  // only when the host stopped draining: they are then bounded by max_events.
  // Everything else is bounded by the protocol itself (data by the credit
  // window, channel events by the channel cap) and is never dropped, so a slow
  // host cannot lose acknowledged bytes.
  const auto advisory = [](const Event& ev) {
    return std::holds_alternative<event::Diagnostic>(ev) ||
           std::holds_alternative<event::Policy>(ev);
  };
  if (advisory(e) && advisory_events_ >= limits_.max_events) {
    ++dropped_events_;
    return;
  }
  if (advisory(e)) ++advisory_events_;
  events_.push_back(std::move(e));
}

void SessionCore::diag(DiagCode c, Timestamp now, std::string detail) {
  emit(event::Diagnostic{c, now, state_, std::move(detail)});
}

void SessionCore::set_state(SessionState s, Timestamp now) {
  if (Result<void> r = change_state(s, now); !r) transition_violation(r.error());
}

Result<void> SessionCore::change_state(SessionState s, Timestamp /*now*/) {
  if (s == state_) return {};
  if (transitions_checked()) {
    if (Result<void> r = check_transition(role(), state_, s); !r) return r;
  }
  const SessionState from = state_;
  state_ = s;
  emit(event::StateChanged{from, s});
  return {};
}

std::optional<OutMessage> SessionCore::poll_output() {
  if (out_.empty()) return std::nullopt;
  OutMessage m = std::move(out_.front());
  out_.pop_front();
  out_bytes_ -= m.data.size();
  return m;
}

std::optional<Event> SessionCore::poll_event() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  if (std::holds_alternative<event::Diagnostic>(e) || std::holds_alternative<event::Policy>(e))
    --advisory_events_;
  return e;
}

void SessionCore::drop_output() noexcept {
  out_.clear();
  out_bytes_ = 0;
}

void SessionCore::send_control(const ControlMessage& m) {
  // I5: only a transport whose handshake completed carries anything but the
  // bootstrap messages; what is skipped here is re-sent by the resume.
  if (!attached_ || state_ != SessionState::ready || !profile_active_) return;
  OutMessage msg = profile_->encode_control(encode_control(m));
  out_bytes_ += msg.data.size();
  out_.push_back(std::move(msg));
}

void SessionCore::send_bootstrap(const ControlMessage& m) {
  if (!attached_) return;
  std::string text = encode_control(m);
  OutMessage msg;
  msg.type = MessageType::text;
  msg.data.assign(text.begin(), text.end());
  out_bytes_ += msg.data.size();
  out_.push_back(std::move(msg));
}

// ---- closing ------------------------------------------------------------------

void SessionCore::release_all_channels(std::string_view reason, Origin origin) {
  while (!channels_.empty())
    free_channel(channels_.begin()->first, reason, origin);
}

void SessionCore::finish(CloseCode code, Origin origin, Errc err, std::string_view reason,
                         bool send_frame, Timestamp now) {
  if (state_ == SessionState::closed) return;
  if (send_frame && attached_) {
    OutMessage m;
    m.type = MessageType::close;
    m.close_code = code;
    m.close_reason = std::string(reason.substr(0, 120));
    out_.push_back(std::move(m));
  }
  attached_ = false;
  release_all_channels(reason.empty() ? std::string_view("connection closed") : reason, origin);
  set_state(SessionState::closed, now);
  emit(event::Closed{code, origin, err, std::string(reason), false});
}

void SessionCore::fail(const Error& e, Timestamp now) {
  if (state_ == SessionState::closed) return;
  const CloseCode code = e.close_code();
  if (is_resumable(code) && attached_) {
    // e.g. heartbeat timeout: close this transport but keep the session.
    OutMessage m;
    m.type = MessageType::close;
    m.close_code = code;
    m.close_reason = e.detail.substr(0, 120);
    out_.push_back(std::move(m));
    attached_ = false;
    on_transport_gone(code, e.origin, e.detail, now);
    return;
  }
  finish(code, e.origin, e.code, e.detail, true, now);
}

void SessionCore::close(CloseCode code, std::string_view reason, Timestamp now) {
  finish(code, Origin::local, code == CloseCode::normal ? Errc::ok : Errc::cancelled, reason, true,
         now);
}

void SessionCore::receive_close(std::uint16_t code, std::string_view reason, Timestamp now) {
  if (state_ == SessionState::closed || !attached_) return;
  attached_ = false;
  drop_output();
  on_transport_gone(static_cast<CloseCode>(code), Origin::remote, reason, now);
}

void SessionCore::transport_lost(Timestamp now) {
  if (state_ == SessionState::closed || !attached_) return;
  attached_ = false;
  drop_output();
  diag(DiagCode::transport_lost, now);
  on_transport_gone(CloseCode::abnormal, Origin::remote, "transport lost", now);
}

void SessionCore::attach_transport(Timestamp now) {
  drop_output();
  attached_ = true;
  last_rx_ = now;
  last_tx_ = now;
  pings_outstanding_ = 0;
}

// ---- timers -------------------------------------------------------------------

std::optional<Timestamp> SessionCore::next_timeout() const {
  std::optional<Timestamp> t = role_deadline();
  if (attached_ && state_ == SessionState::ready && heartbeat_.ns > 0) {
    const Timestamp ping_at = last_tx_ + heartbeat_;
    const Timestamp dead_at = last_rx_ + heartbeat_ * static_cast<std::int64_t>(heartbeat_misses_);
    const Timestamp hb = std::min(ping_at, dead_at);
    if (!t || hb < *t) t = hb;
  }
  return t;
}

void SessionCore::handle_timeout(Timestamp now) {
  if (state_ == SessionState::closed) return;
  on_role_timeout(now);
  if (state_ != SessionState::ready || !attached_ || heartbeat_.ns <= 0) return;
  if (now - last_rx_ >= heartbeat_ * static_cast<std::int64_t>(heartbeat_misses_)) {
    diag(DiagCode::heartbeat_missed, now, std::to_string(pings_outstanding_) + " pings unanswered");
    fail(make_error(Errc::timeout, Origin::local, "peer silent for heartbeat interval x misses"),
         now);
    return;
  }
  if (now - last_tx_ >= heartbeat_) {
    const std::uint64_t ts = (now.ns / 1000) & max_json_integer;  // microseconds
    send_control(Ping{ts});
    last_tx_ = now;
    ++pings_outstanding_;
    diag(DiagCode::ping_sent, now);
  }
}

// ---- receive path ---------------------------------------------------------------

void SessionCore::receive(MessageType type, ByteView message, Timestamp now) {
  if (state_ == SessionState::closed || !attached_) return;
  last_rx_ = now;
  if (type == MessageType::close) return;  // hosts use receive_close()
  if (state_ == SessionState::ready) on_peer_activity();
  if (message.size() > limits_.frame.max_frame) {
    fail(make_error(Errc::frame_too_large, Origin::remote,
                    "message of " + std::to_string(message.size()) + " bytes exceeds maxFrame"),
         now);
    return;
  }
  if (!profile_active_) {
    // Bootstrap: hello / hello_ok are plain JSON text regardless of profile.
    if (type != MessageType::text) {
      // Only the first client frame must be hello (4002); after it, anything
      // before hello_ok is a message not allowed in this state (4009).
      const Errc e = is_server_ && state_ == SessionState::awaiting_hello
                         ? Errc::expected_hello
                         : Errc::unexpected_message;
      fail(make_error(e, Origin::remote, "binary message before the handshake completed"), now);
      return;
    }
    if (message.size() > limits_.parse.max_json) {
      fail(make_error(Errc::control_too_large, Origin::remote, "control JSON too large"), now);
      return;
    }
    dispatch_frame(ControlFrame{std::string(message.begin(), message.end())}, now);
    return;
  }
  Result<Frame> f = profile_->decode(type, message, limits_.frame);
  if (!f) {
    fail(f.error(), now);
    return;
  }
  dispatch_frame(std::move(f).value(), now);
}

void SessionCore::dispatch_frame(Frame&& f, Timestamp now) {
  if (auto* d = std::get_if<DataFrame>(&f)) {
    if (state_ != SessionState::ready) {
      fail(make_error(is_server_ ? Errc::expected_hello : Errc::unexpected_message, Origin::remote,
                      "data before the handshake completed"),
           now);
      return;
    }
    handle_data(std::move(*d), now);
    return;
  }
  auto& c = std::get<ControlFrame>(f);
  Result<ControlMessage> m = parse_control(c.json, limits_.parse);
  if (!m) {
    Error e = std::move(m).error();
    // Before the handshake the server expects hello: anything malformed there
    // is a bad hello (4002), an unknown type is still 4009 after hello.
    if (is_server_ && state_ == SessionState::awaiting_hello && e.code != Errc::control_too_large) {
      e.code = (e.code == Errc::unknown_message_type) ? Errc::expected_hello : Errc::bad_hello;
    }
    fail(e, now);
    return;
  }
  dispatch_control(std::move(m).value(), now);
}

void SessionCore::handle_data(DataFrame&& f, Timestamp now) {
  Channel* ch = find(f.id);
  if (ch == nullptr) {
    fail(make_error(Errc::unknown_channel, Origin::remote,
                    channel_detail(f.id, "data for a channel that is not open")),
         now);
    return;
  }
  if (is_server_ && f.stream != Stream::out) {
    fail(make_error(Errc::unknown_stream, Origin::remote,
                    channel_detail(f.id, "client sent on stream stderr")),
         now);
    return;
  }
  if (!ch->acked) {
    // No credit exists before open_ok.
    fail(make_error(Errc::credit_overrun, Origin::remote,
                    channel_detail(f.id, "data before the channel was acknowledged")),
         now);
    return;
  }
  if (auto r = ch->recv.on_data(f.payload.size()); !r) {
    Error e = std::move(r).error();
    e.detail = channel_detail(f.id, e.detail);
    fail(e, now);
    return;
  }
  if (ch->local_close_sent || f.payload.empty()) {
    // Counted for resume offsets, but the application no longer wants it.
    (void)ch->recv.consume(f.payload.size());
    return;
  }
  emit(event::ChannelData{f.id, f.stream, std::move(f.payload)});
}

// ---- channels -------------------------------------------------------------------

SessionCore::Channel* SessionCore::find(ChannelId id) noexcept {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : &it->second;
}

const SessionCore::Channel* SessionCore::find(ChannelId id) const noexcept {
  auto it = channels_.find(id);
  return it == channels_.end() ? nullptr : &it->second;
}

SessionCore::Channel& SessionCore::add_channel(ChannelId id) {
  auto [it, inserted] = channels_.try_emplace(id, id, window_cfg_, replay_capacity_);
  (void)inserted;
  return it->second;
}

void SessionCore::free_channel(ChannelId id, std::string_view reason, Origin origin) {
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  channels_.erase(it);
  emit(event::ChannelClosed{id, std::string(reason), origin});
}

std::uint64_t SessionCore::available(ChannelId id) const noexcept {
  const Channel* ch = find(id);
  if (ch == nullptr || !ch->acked || ch->local_close_sent || state_ == SessionState::closed)
    return 0;
  const std::uint64_t room = ch->replay.capacity() - ch->replay.size();
  if (ch->send_unlimited) return room;
  return std::min<std::uint64_t>(ch->send.available(), room);
}

Result<std::size_t> SessionCore::write(ChannelId id, Stream stream, ByteView data, Timestamp now) {
  (void)now;
  if (state_ == SessionState::closed)
    return make_error(Errc::invalid_state, Origin::local, "session closed");
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (!ch->acked || ch->local_close_sent)
    return make_error(Errc::invalid_state, Origin::local, "channel not writable");
  if (!is_server_ && stream != Stream::out)
    return make_error(Errc::invalid_argument, Origin::local, "clients write stdout only");
  const std::uint64_t avail = available(id);
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(avail, data.size()));
  if (n < data.size()) ch->want_writable = true;
  if (n == 0) return std::size_t{0};
  const ByteView part = data.first(n);
  // Shared payloads: the queued messages reference the replay chunks the bytes
  // are stored in (one copy instead of two). An ack (including the immediate
  // one below) cannot free them: parts own them.
  const bool share = sharing_payloads() && can_queue_data();
  std::vector<PayloadPart> parts;
  if (auto r =
          share ? ch->replay.append_shared(stream, part, parts) : ch->replay.append(stream, part);
      !r) {
    return std::move(r).error();
  }
  ch->send.on_sent(n);
  if (ch->send_unlimited) (void)ch->replay.ack(ch->send.sent());  // no acks from legacy peers
  if (share) {
    queue_shared_data(*ch, stream, std::move(parts));
  } else {
    queue_data(*ch, stream, part);
  }
  if (attached_) last_tx_ = now;
  return n;
}

Result<void> SessionCore::consume(ChannelId id, std::uint64_t n, Timestamp now) {
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (auto r = ch->recv.consume(n); !r) return r;
  maybe_grant(*ch, now, false);
  return {};
}

void SessionCore::maybe_grant(Channel& ch, Timestamp now, bool force) {
  // After our close we send nothing more on the channel: the peer frees it on
  // our close, so a flow would arrive for an unknown channel.
  if (!ch.acked || ch.local_close_sent || ch.remote_close_received) return;
  // Grants are taken only when they can be sent: a raised limit the peer never
  // hears of would stall the channel. Without a transport the resume exchange
  // advertises the credit instead (resume_credit()).
  if (!attached_ || state_ != SessionState::ready) return;
  const Duration rtt = srtt_.value_or(Duration{});
  auto credit = ch.recv.take_grant(pause_.paused(), now, rtt, force);
  if (!credit) return;
  send_control(Flow{ch.id, *credit, ch.recv.received()});
  if (attached_) last_tx_ = now;
  emit(event::Policy{PolicyKind::credit_grant, ch.id, 0, *credit, {}});
}

void SessionCore::grant_all(Timestamp now, bool force) {
  for (auto& [id, ch] : channels_)
    maybe_grant(ch, now, force);
}

void SessionCore::set_paused(PauseReason reason, bool on, Timestamp now) {
  const bool changed = pause_.set(reason, on);
  if (!changed) return;
  if (pause_.paused()) {
    emit(
        event::Policy{PolicyKind::flow_pause, 0, pause_.bits(), 0, std::string(to_string(reason))});
  } else {
    emit(event::Policy{PolicyKind::flow_resume, 0, 0, 0, std::string(to_string(reason))});
    if (state_ == SessionState::ready) grant_all(now, false);
  }
}

Result<void> SessionCore::close_channel(ChannelId id, std::string_view reason, Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (ch->local_close_sent) return {};
  ch->local_close_sent = true;
  ch->close_reason_sent = std::string(reason.substr(0, 256));
  if (!ch->acked && !is_server_) {
    // Never acknowledged: the close goes out when open_ok arrives, an open_err
    // just frees the channel. Sent now it could cross the server's open_err,
    // and the server would get a close for a channel it no longer has (4014).
    return {};
  }
  Close c{id, reason.empty() ? std::nullopt : std::optional<std::string>(ch->close_reason_sent)};
  send_control(c);
  if (ch->remote_close_received) free_channel(id, reason, Origin::local);
  return {};
}

std::size_t SessionCore::replay_bytes(ChannelId id) const noexcept {
  const Channel* ch = find(id);
  return ch == nullptr ? 0 : ch->replay.size();
}

std::size_t SessionCore::total_replay_bytes() const noexcept {
  std::size_t n = 0;
  for (const auto& [id, ch] : channels_)
    n += ch.replay.size();
  return n;
}

std::optional<SessionCore::ChannelStats> SessionCore::channel_stats(ChannelId id) const noexcept {
  const Channel* ch = find(id);
  if (ch == nullptr) return std::nullopt;
  ChannelStats s;
  s.sent = ch->send.sent();
  s.send_limit = ch->send.limit();
  s.acked = ch->replay.start_offset();
  s.received = ch->recv.received();
  s.consumed = ch->recv.consumed();
  s.recv_limit = ch->recv.limit();
  s.window = ch->recv.window();
  s.resume_rx = ch->resume_rx;
  s.payload_cap = ch->payload_cap;
  return s;
}

std::vector<ChannelId> SessionCore::channel_ids() const {
  std::vector<ChannelId> ids;
  ids.reserve(channels_.size());
  for (const auto& [id, ch] : channels_)
    ids.push_back(id);
  return ids;
}

}  // namespace mana::core
