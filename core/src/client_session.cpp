// SPDX-License-Identifier: Apache-2.0
#include "mana/core/client_session.hpp"

#include <string>
#include <utility>

namespace mana::core {

ClientSession::ClientSession(ClientConfig cfg, Timestamp now)
    : SessionCore(false, cfg.limits, now), cfg_(std::move(cfg)) {
  window_cfg_ = cfg_.window;
  replay_capacity_ = cfg_.replay_capacity;
  heartbeat_ = cfg_.heartbeat;
  heartbeat_misses_ = cfg_.heartbeat_misses;
  if (cfg_.custom_profile != nullptr && cfg_.custom_profile->id() == cfg_.profile) {
    profile_ = cfg_.custom_profile;
  } else if (cfg_.profile == json_base64_v1_profile().id()) {
    profile_ = &json_base64_v1_profile();
  } else if (cfg_.profile == lenpfx_v1_profile().id()) {
    profile_ = &lenpfx_v1_profile();
  } else {
    profile_ = &mana_v1_profile();
    cfg_.profile = std::string(profile_->id());
  }
}

Result<void> ClientSession::transport_open(Timestamp now) {
  if (state_ != SessionState::connecting && state_ != SessionState::reconnecting)
    return make_error(Errc::invalid_state, Origin::local,
                      "transport_open in state " + std::string(to_string(state_)));
  const bool resuming = state_ == SessionState::reconnecting || adopted_;
  adopted_ = false;
  attach_transport(now);
  profile_active_ = false;
  Hello h;
  h.auth = cfg_.auth;
  h.caps.profile = cfg_.profile;
  h.caps.max_frame = static_cast<std::uint32_t>(cfg_.limits.frame.max_frame);
  h.caps.bidi = true;
  h.caps.resume = cfg_.resume;
  resuming_ = resuming && token_.has_value();
  if (resuming_) {
    ResumeRequest rr;
    rr.token = *token_;
    for (const auto& [id, ch] : channels_)
      if (ch.acked) rr.channels.push_back(resume_entry(ch));
    h.resume = std::move(rr);
  }
  set_state(SessionState::authenticating, now);
  send_bootstrap(h);
  handshake_deadline_ = now + cfg_.handshake_timeout;
  diag(resuming_ ? DiagCode::resume_requested : DiagCode::hello_sent, now);
  return {};
}

Result<void> ClientSession::adopt_resume_token(std::string token) {
  if (state_ != SessionState::connecting || !channels_.empty() || !cfg_.resume)
    return make_error(Errc::invalid_state, Origin::local,
                      "adopt_resume_token needs a fresh session with resume enabled");
  if (!is_resume_token(token))
    return make_error(Errc::invalid_argument, Origin::local,
                      "resume token must be 16..256 bytes of [A-Za-z0-9_-]");
  token_ = std::move(token);
  adopted_ = true;
  return {};
}

bool ClientSession::on_control_gate(ControlMessage& m, Timestamp now) {
  // C1: while hello is unanswered only hello_ok may arrive (PROTOCOL.md 6.1 rule 3).
  if (state_ != SessionState::authenticating) return false;
  if (auto* h = std::get_if<HelloOk>(&m)) {
    on_hello_ok(std::move(*h), now);
    return true;
  }
  fail(make_error(Errc::unexpected_message, Origin::remote,
                  std::string(type_name(m)) + " before hello_ok"),
       now);
  return true;
}

bool ClientSession::on_role_control(ControlMessage& m, Timestamp now) {
  if (auto* ok = std::get_if<OpenOk>(&m)) {
    Channel* ch = find(ok->id);
    if (ch == nullptr || ch->acked) {
      fail(make_error(ch == nullptr ? Errc::unknown_channel : Errc::unexpected_message,
                      Origin::remote, "open_ok for channel " + std::to_string(ok->id)),
           now);
      return true;
    }
    ch->acked = true;
    ch->open_request.reset();
    if (!peer_bidi_) {
      // Legacy server: no client->server credit. The window still counts
      // what was sent (SendWindow::on_sent asserts sent <= limit).
      ch->send_unlimited = true;
      ch->send = SendWindow(0, max_json_integer);
    } else {
      const std::uint64_t w =
          ok->window.value_or(hello_ok_ ? hello_ok_->caps.window : WindowConfig{}.initial);
      ch->send = SendWindow(0, w);
    }
    if (ch->local_close_sent) {
      // Closed by the application while pending: the held-back close goes out
      // now (see SessionCore::close_channel); ChannelClosed follows the
      // server's close.
      send_control(Close{ch->id, ch->close_reason_sent.empty()
                                     ? std::nullopt
                                     : std::optional<std::string>(ch->close_reason_sent)});
      return true;
    }
    // A resize made while the open was pending was held back: send it now.
    if (ch->last_resize) send_control(*ch->last_resize);
    emit(event::ChannelOpened{ok->id, ok->resume_key});
    return true;
  }
  if (auto* err = std::get_if<OpenErr>(&m)) {
    Channel* ch = find(err->id);
    if (ch == nullptr || ch->acked) {
      fail(make_error(ch == nullptr ? Errc::unknown_channel : Errc::unexpected_message,
                      Origin::remote, "open_err for channel " + std::to_string(err->id)),
           now);
      return true;
    }
    channels_.erase(err->id);
    emit(event::ChannelOpenFailed{err->id, err->code, err->msg});
    return true;
  }
  if (auto* ex = std::get_if<Exit>(&m)) {
    Channel* ch = find(ex->id);
    if (ch == nullptr) {
      fail(make_error(Errc::unknown_channel, Origin::remote,
                      "exit for channel " + std::to_string(ex->id)),
           now);
      return true;
    }
    if (ch->exit_received) return true;  // duplicate after resume
    ch->exit_received = true;
    emit(event::ChannelExit{ex->id, ex->code, ex->sig});
    return true;
  }
  return false;
}

void ClientSession::on_hello_ok(HelloOk&& h, Timestamp now) {
  if (h.caps.profile_accepted != cfg_.profile) {
    fail(make_error(Errc::unsupported_profile, Origin::remote,
                    "server accepted profile '" + h.caps.profile_accepted + "'"),
         now);
    return;
  }
  handshake_deadline_.reset();
  peer_max_frame_ = h.caps.max_frame;
  peer_bidi_ = h.caps.bidi;
  // Both sides use the server's heartbeat interval.
  if (h.caps.heartbeat_ms > 0) heartbeat_ = Duration::from_ms(h.caps.heartbeat_ms);
  if (h.resume) {
    if (token_ && *token_ != h.resume->token) diag(DiagCode::token_rotated, now);
    token_ = h.resume->token;
  } else if (resuming_) {
    fail(make_error(Errc::resume_rejected, Origin::remote, "hello_ok without resume"), now);
    return;
  } else {
    token_.reset();
  }
  profile_active_ = true;
  hello_ok_ = h;
  set_state(SessionState::ready, now);

  bool resumed = false;
  if (resuming_) {
    resuming_ = false;
    std::map<ChannelId, const ResumeChannel*> theirs;
    for (const auto& e : h.resume->channels)
      theirs[e.id] = &e;
    for (const auto& [id, ch] : channels_) {
      if (!ch.acked) continue;
      auto it = theirs.find(id);
      if (it == theirs.end()) continue;
      if (auto r = check_resume_entry(ch, *it->second); !r) {
        fail(r.error(), now);
        return;
      }
    }
    std::vector<ChannelId> gone;
    std::vector<ChannelId> abandoned;  // closed by the application before open_ok
    for (auto& [id, ch] : channels_) {
      if (!ch.acked) {
        if (ch.local_close_sent) abandoned.push_back(id);
        continue;
      }
      auto it = theirs.find(id);
      if (it == theirs.end()) {
        gone.push_back(id);
      }
    }
    for (ChannelId id : gone)
      free_channel(id, "resume: unknown to peer", Origin::remote);
    // Not listed, so the server dropped them too; re-opening would be wrong.
    for (ChannelId id : abandoned)
      free_channel(id, "closed before open_ok", Origin::local);
    for (auto& [id, ch] : channels_) {
      if (!ch.acked) {
        resend_open(ch);
        continue;
      }
      apply_resume_entry(ch, *theirs[id], now);
      if (ch.last_resize && !ch.local_close_sent) send_control(*ch.last_resize);
    }
    grant_all(now, false);
    ++resumes_;
    resumed = true;
    diag(DiagCode::resume_accepted, now);
  } else {
    diag(DiagCode::hello_ok, now);
  }
  emit(event::Ready{resumed, std::move(h)});
}

void ClientSession::resend_open(Channel& ch) {
  if (!ch.open_request) return;
  Open o = *ch.open_request;
  o.window = ch.recv.limit();
  send_control(o);
}

void ClientSession::on_transport_gone(CloseCode code, Origin origin, std::string_view reason,
                                      Timestamp now) {
  if (state_ == SessionState::closed) return;
  const bool can_resume = cfg_.resume && token_.has_value() && is_resumable(code) &&
                          (state_ == SessionState::ready || state_ == SessionState::reconnecting ||
                           (state_ == SessionState::authenticating && resuming_));
  if (can_resume) {
    resuming_ = false;
    handshake_deadline_.reset();
    set_state(SessionState::reconnecting, now);
    emit(event::Closed{code, origin, errc_from_close(code), std::string(reason), true});
    return;
  }
  if (code == CloseCode::resume_failed) diag(DiagCode::resume_rejected, now, std::string(reason));
  finish(code, origin, errc_from_close(code), reason, false, now);
}

void ClientSession::on_role_timeout(Timestamp now) {
  if (handshake_deadline_ && now >= *handshake_deadline_ &&
      state_ == SessionState::authenticating) {
    handshake_deadline_.reset();
    fail(make_error(Errc::timeout, Origin::local, "no hello_ok within the handshake timeout"), now);
  }
}

std::optional<Timestamp> ClientSession::role_deadline() const {
  if (state_ == SessionState::authenticating) return handshake_deadline_;
  return std::nullopt;
}

Result<ChannelId> ClientSession::open_channel(const OpenParams& p, Timestamp now) {
  (void)now;
  if (state_ != SessionState::ready)
    return make_error(Errc::invalid_state, Origin::local, "open_channel needs state ready");
  if (p.target.host.empty() || p.target.host.size() > 253 || p.target.port == 0)
    return make_error(Errc::invalid_argument, Origin::local, "target host/port invalid");
  if (p.kind != "tcp" && p.kind != "ssh")
    return make_error(Errc::invalid_argument, Origin::local, "kind must be tcp or ssh");
  constexpr ChannelId max_id = 0x7fffffff;
  for (std::uint32_t tries = 0; channels_.count(next_id_) != 0; ++tries) {
    if (tries > channels_.size()) return make_error(Errc::buffer_full, Origin::local, "ids");
    next_id_ = next_id_ >= max_id ? 1 : next_id_ + 1;
  }
  const ChannelId id = next_id_;
  next_id_ = next_id_ >= max_id ? 1 : next_id_ + 1;
  Channel& ch = add_channel(id);
  Open o;
  o.id = id;
  o.kind = p.kind;
  o.target = p.target;
  o.user = p.user;
  o.term = p.term;
  o.window = ch.recv.limit();
  ch.open_request = o;
  send_control(o);
  return id;
}

Result<void> ClientSession::resize(ChannelId id, std::uint16_t cols, std::uint16_t rows,
                                   Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (cols == 0 || rows == 0 || cols > 10000 || rows > 10000)
    return make_error(Errc::invalid_argument, Origin::local, "cols/rows out of range");
  ch->last_resize = Resize{id, cols, rows};
  if (ch->acked && !ch->local_close_sent) send_control(*ch->last_resize);
  return {};
}

Result<void> ClientSession::signal(ChannelId id, std::string_view sig, Timestamp now) {
  (void)now;
  Channel* ch = find(id);
  if (ch == nullptr) return make_error(Errc::unknown_channel, Origin::local, "no such channel");
  if (sig.empty() || sig.size() > 32)
    return make_error(Errc::invalid_argument, Origin::local, "signal name length");
  for (char c : sig)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
      return make_error(Errc::invalid_argument, Origin::local, "signal name charset");
  if (!ch->acked || ch->local_close_sent)
    return make_error(Errc::invalid_state, Origin::local, "channel not open");
  send_control(Signal{id, std::string(sig)});
  return {};
}

}  // namespace mana::core
