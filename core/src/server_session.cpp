// SPDX-License-Identifier: Apache-2.0
#include "mana/core/server_session.hpp"

#include "mana/core/constant_time.hpp"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mana::core {

namespace {

const ProfileRegistry& builtin_registry() {
  static const ProfileRegistry registry;
  return registry;
}

}  // namespace

ServerSession::ServerSession(ServerConfig cfg, Timestamp now)
    : SessionCore(true, cfg.limits, now),
      cfg_(std::move(cfg)),
      control_bucket_(cfg_.control_rate, cfg_.control_burst) {
  window_cfg_ = cfg_.window;
  replay_capacity_ = cfg_.replay_capacity;
  heartbeat_ = cfg_.heartbeat;
  heartbeat_misses_ = cfg_.heartbeat_misses;
  attach_transport(now);
  handshake_deadline_ = now + cfg_.handshake_timeout;
}

ServerCaps ServerSession::caps() const {
  ServerCaps c;
  c.max_frame = static_cast<std::uint32_t>(cfg_.limits.frame.max_frame);
  c.profile_accepted = std::string(profile_->id());
  c.bidi = true;
  if (!token_.empty()) c.resume_ttl_ms = static_cast<std::uint32_t>(cfg_.resume_ttl.ms());
  // A disabled timer (0) is announced as the largest interval the field allows.
  auto announce = [](Duration d) {
    const std::int64_t ms = d.ms();
    return ms <= 0 || ms > 0xffffffffLL ? 0xffffffffU : static_cast<std::uint32_t>(ms);
  };
  c.heartbeat_ms = announce(cfg_.heartbeat);
  c.idle_timeout_ms = announce(cfg_.idle_timeout);
  c.max_channels = cfg_.max_channels;
  c.window = cfg_.window.initial;
  return c;
}

bool ServerSession::on_control_gate(ControlMessage& m, Timestamp now) {
  // flow and pong are exempt: flow grows with throughput (one per half window
  // consumed) and pong answers our own pings; neither can be sent faster than
  // data or pings arrive.
  const bool exempt = std::holds_alternative<Flow>(m) || std::holds_alternative<Pong>(m);
  if (!exempt && !control_bucket_.try_take(now)) {
    emit(event::Policy{PolicyKind::rate_limited, 0, 0, cfg_.control_rate, "control messages"});
    fail(make_error(Errc::rate_limited, Origin::remote, "control message rate exceeded"), now);
    return true;
  }
  if (state_ == SessionState::awaiting_hello) {
    if (auto* h = std::get_if<Hello>(&m)) {
      on_hello(std::move(*h), now);
      return true;
    }
    fail(make_error(Errc::expected_hello, Origin::remote,
                    "first message was " + std::string(type_name(m))),
         now);
    return true;
  }
  if (state_ != SessionState::ready) {
    fail(make_error(Errc::unexpected_message, Origin::remote,
                    std::string(type_name(m)) + " before hello_ok"),
         now);
    return true;
  }
  return false;
}

bool ServerSession::on_role_control(ControlMessage& m, Timestamp now) {
  if (auto* o = std::get_if<Open>(&m)) {
    on_open(std::move(*o), now);
    return true;
  }
  if (auto* r = std::get_if<Resize>(&m)) {
    const Channel* ch = find(r->id);
    if (ch == nullptr || !ch->acked) {
      fail(make_error(Errc::unknown_channel, Origin::remote,
                      "resize for channel " + std::to_string(r->id)),
           now);
      return true;
    }
    if (!ch->local_close_sent) emit(event::ChannelResized{r->id, r->cols, r->rows});
    return true;
  }
  if (auto* s = std::get_if<Signal>(&m)) {
    const Channel* ch = find(s->id);
    if (ch == nullptr || !ch->acked) {
      fail(make_error(Errc::unknown_channel, Origin::remote,
                      "signal for channel " + std::to_string(s->id)),
           now);
      return true;
    }
    if (!ch->local_close_sent) emit(event::ChannelSignal{s->id, s->sig});
    return true;
  }
  return false;
}

void ServerSession::on_hello(Hello&& h, Timestamp now) {
  if (h.proto != protocol_version) {
    fail(
        make_error(Errc::bad_hello, Origin::remote, "unsupported proto " + std::to_string(h.proto)),
        now);
    return;
  }
  const ProfileRegistry& reg = cfg_.profiles != nullptr ? *cfg_.profiles : builtin_registry();
  const WireProfile* p = reg.find(h.caps.profile);
  if (p == nullptr) {
    fail(make_error(Errc::unsupported_profile, Origin::remote,
                    "profile '" + h.caps.profile.substr(0, 64) + "' not offered"),
         now);
    return;
  }
  profile_ = p;
  peer_max_frame_ = h.caps.max_frame.value_or(1U << 20);
  const bool resume = h.resume.has_value();
  hello_ = h;
  set_state(SessionState::authenticating, now);
  if (resume) {
    emit(event::ResumeRequested{std::move(h)});
  } else {
    emit(event::HelloReceived{std::move(h)});
  }
}

Result<void> ServerSession::accept(const AcceptParams& p, Timestamp now) {
  if (state_ != SessionState::authenticating || !hello_)
    return make_error(Errc::invalid_state, Origin::local, "accept needs a pending hello");
  token_ = hello_->caps.resume ? p.resume_token : std::string();
  HelloOk ok;
  ok.server = cfg_.server_name;
  if (!cfg_.route_id.empty()) ok.route = cfg_.route_id;
  ok.caps = caps();
  if (!token_.empty()) ok.resume = ResumeGrant{token_, {}};
  send_bootstrap(ok);
  profile_active_ = true;
  handshake_deadline_.reset();
  set_state(SessionState::ready, now);
  diag(DiagCode::hello_ok, now);
  return {};
}

void ServerSession::reject(Errc reason, std::string_view detail, Timestamp now) {
  if (reason == Errc::resume_rejected) diag(DiagCode::resume_rejected, now, std::string(detail));
  finish(to_close_code(reason), Origin::local, reason, detail, true, now);
}

Result<void> ServerSession::resume(const Hello& hello, std::string new_token, Timestamp now) {
  if (state_ != SessionState::ready && state_ != SessionState::detached)
    return make_error(Errc::invalid_state, Origin::local, "session cannot be resumed");
  if (!hello.resume || new_token.empty())
    return make_error(Errc::invalid_argument, Origin::local, "resume needs a request and token");
  const ProfileRegistry& reg = cfg_.profiles != nullptr ? *cfg_.profiles : builtin_registry();
  const WireProfile* prof = reg.find(hello.caps.profile);
  if (prof == nullptr)
    return make_error(Errc::unsupported_profile, Origin::remote, "profile not offered");

  std::map<ChannelId, const ResumeChannel*> theirs;
  for (const auto& e : hello.resume->channels)
    theirs[e.id] = &e;
  for (const auto& [id, ch] : channels_) {
    if (!ch.acked) continue;
    auto it = theirs.find(id);
    if (it == theirs.end()) continue;
    if (auto r = check_resume_entry(ch, *it->second); !r) return r;
  }

  // Accepted: from here on the session belongs to the new transport.
  if (attached_) diag(DiagCode::transport_superseded, now);
  attach_transport(now);
  profile_ = prof;
  profile_active_ = false;
  peer_max_frame_ = hello.caps.max_frame.value_or(1U << 20);
  hello_ = hello;
  // The token this resume used stays valid until the client shows it holds the
  // new one (S5).
  previous_token_ = hello.resume->token;
  token_ = std::move(new_token);
  detach_deadline_.reset();
  handshake_deadline_.reset();

  std::vector<ChannelId> gone;
  for (const auto& [id, ch] : channels_) {
    auto it = theirs.find(id);
    if (it == theirs.end() || !ch.acked) gone.push_back(id);
  }
  for (ChannelId id : gone)
    free_channel(id, "resume: unknown to peer", Origin::remote);

  HelloOk ok;
  ok.server = cfg_.server_name;
  if (!cfg_.route_id.empty()) ok.route = cfg_.route_id;
  ok.caps = caps();
  ResumeGrant grant;
  grant.token = token_;
  for (const auto& [id, ch] : channels_)
    grant.channels.push_back(resume_entry(ch));
  ok.resume = std::move(grant);
  send_bootstrap(ok);
  profile_active_ = true;
  set_state(SessionState::ready, now);
  for (auto& [id, ch] : channels_)
    apply_resume_entry(ch, *theirs[id], now);
  grant_all(now, false);
  ++resumes_;
  diag(DiagCode::resume_accepted, now);
  diag(DiagCode::token_rotated, now);
  return {};
}

bool ServerSession::matches_token(std::string_view token) const noexcept {
  const bool current = !token_.empty() && constant_time_equal(token, token_);
  const bool previous = !previous_token_.empty() && constant_time_equal(token, previous_token_);
  return current || previous;
}

void ServerSession::on_open(Open&& o, Timestamp now) {
  if (find(o.id) != nullptr) {
    fail(make_error(Errc::duplicate_channel, Origin::remote,
                    "channel " + std::to_string(o.id) + " is in use"),
         now);
    return;
  }
  if (channels_.size() >= cfg_.max_channels) {
    emit(event::Policy{PolicyKind::channel_limit, o.id, 0, cfg_.max_channels, "channels"});
    fail(make_error(Errc::channel_limit, Origin::remote,
                    "more than " + std::to_string(cfg_.max_channels) + " channels"),
         now);
    return;
  }
  Channel& ch = add_channel(o.id);
  ch.open_request = o;
  emit(event::OpenRequested{std::move(o)});
}

Result<void> ServerSession::accept_open(ChannelId id, std::optional<std::string> resume_key,
                                        Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (ch->acked) return make_error(Errc::invalid_state, Origin::local, "already accepted");
  ch->acked = true;
  const std::uint64_t w =
      ch->open_request && ch->open_request->window ? *ch->open_request->window : caps().window;
  ch->send = SendWindow(0, w);
  ch->open_request.reset();
  send_control(OpenOk{id, std::move(resume_key), ch->recv.limit()});
  return {};
}

Result<void> ServerSession::reject_open(ChannelId id, std::string_view code, std::string_view msg,
                                        Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (ch->acked) return make_error(Errc::invalid_state, Origin::local, "already accepted");
  const bool closed_by_client = ch->remote_close_received;
  channels_.erase(id);
  if (!closed_by_client) send_control(OpenErr{id, std::string(code), std::string(msg)});
  return {};
}

Result<void> ServerSession::exit_channel(ChannelId id, std::optional<std::int32_t> code,
                                         std::optional<std::string> sig, Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (!ch->acked || ch->local_close_sent || ch->exit_sent)
    return make_error(Errc::invalid_state, Origin::local, "exit not allowed now");
  ch->exit_sent = Exit{id, code, std::move(sig)};
  send_control(*ch->exit_sent);
  return {};
}

void ServerSession::on_transport_gone(CloseCode code, Origin origin, std::string_view reason,
                                      Timestamp now) {
  if (state_ == SessionState::closed) return;
  if (state_ == SessionState::ready && !token_.empty() &&
      (is_resumable(code) || code == CloseCode::going_away)) {
    detach_deadline_ = now + cfg_.resume_ttl;
    set_state(SessionState::detached, now);
    emit(event::Closed{code, origin, Errc::ok, std::string(reason), true});
    return;
  }
  Errc e = Errc::going_away;
  if (code == CloseCode::normal) e = Errc::ok;
  if (code == CloseCode::timeout) e = Errc::timeout;
  finish(code, origin, e, reason, false, now);
}

void ServerSession::on_role_timeout(Timestamp now) {
  if (handshake_deadline_ && now >= *handshake_deadline_ &&
      (state_ == SessionState::awaiting_hello || state_ == SessionState::authenticating)) {
    handshake_deadline_.reset();
    finish(CloseCode::timeout, Origin::local, Errc::timeout, "handshake timeout", true, now);
    return;
  }
  if (state_ == SessionState::detached && detach_deadline_ && now >= *detach_deadline_) {
    detach_deadline_.reset();
    finish(CloseCode::resume_failed, Origin::local, Errc::timeout, "resume ttl expired", false,
           now);
    return;
  }
  if (state_ == SessionState::ready && attached_ && cfg_.idle_timeout.ns > 0 &&
      now - last_rx_ >= cfg_.idle_timeout) {
    fail(make_error(Errc::timeout, Origin::local, "idle timeout"), now);
  }
}

std::optional<Timestamp> ServerSession::role_deadline() const {
  switch (state_) {
    case SessionState::awaiting_hello:
    case SessionState::authenticating:
      return handshake_deadline_;
    case SessionState::detached:
      return detach_deadline_;
    case SessionState::ready:
      if (attached_ && cfg_.idle_timeout.ns > 0) return last_rx_ + cfg_.idle_timeout;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

}  // namespace mana::core
