// SPDX-License-Identifier: Apache-2.0
#include "session.hpp"

#include <boost/asio/post.hpp>

#include "connection.hpp"
#include "log.hpp"
#include "relay.hpp"
#include "session_registry.hpp"

namespace mana::gateway {

namespace core = mana::core;

core::ServerConfig make_server_config(const Config& cfg, std::string route_id) {
  core::ServerConfig sc;
  sc.route_id = std::move(route_id);
  sc.window.initial = cfg.window;
  sc.window.max = cfg.max_window;
  sc.replay_capacity = static_cast<std::size_t>(cfg.max_window);
  sc.max_channels = cfg.max_channels;
  sc.control_rate = cfg.control_rate;
  sc.control_burst = cfg.control_burst;
  sc.heartbeat = core::Duration::from_ms(cfg.heartbeat_ms);
  sc.heartbeat_misses = cfg.heartbeat_misses;
  sc.idle_timeout = core::Duration::from_ms(cfg.idle_timeout_ms);
  sc.handshake_timeout = core::Duration::from_ms(cfg.handshake_timeout_ms);
  sc.resume_ttl = core::Duration::from_ms(cfg.resume_ttl_ms);
  sc.limits.frame.max_frame = cfg.max_frame;
  return sc;
}

Session::Session(Context& ctx, std::string client_ip, std::string origin)
    : ctx_(ctx),
      id_(ctx.next_id++),
      ip_(std::move(client_ip)),
      origin_(std::move(origin)),
      core_(make_server_config(ctx.cfg, ctx.route_id), mono_now()),
      timer_(ctx.io, host::SessionTimer::Rearm::keep_earlier),
      free_budget_({ctx.cfg.free_message_rate, ctx.cfg.free_message_burst,
                    ctx.cfg.free_message_refill_bytes},
                   mono_now()) {
  // Data messages reference the replay buffers (raw profiles): Connection writes header and
  // payload parts as one gather write, so relayed bytes are copied once (socket -> replay).
  core_.set_shared_payloads(true);
}

Session::~Session() = default;

void Session::attach(const std::shared_ptr<Connection>& c) {
  conn_ = c;
  c->set_session(shared_from_this());
}

void Session::on_message(core::MessageType type, core::ByteView data) {
  if (!live()) return;
  const core::Timestamp now = mono_now();
  delivered_ = 0;
  const bool first = !first_seen_;
  if (first && ctx_.handover != nullptr) {
    // Bounded by session.max_frame (the WebSocket's read_message_max).
    first_.assign(reinterpret_cast<const char*>(data.data()), data.size());  // NOLINT
    first_text_ = type == core::MessageType::text;
  }
  first_seen_ = true;
  core_.receive(type, data, now);
  pump();
  if (first) first_ = std::string();  // answered (or forwarded) by now
  // Free: every message that delivered less than free_message_min_payload bytes to a target
  // (control messages, empty or nearly empty data messages), whatever its type.
  if (delivered_ < ctx_.cfg.free_message_min_payload) spend_free_message(now);
}

void Session::on_transport_control() {
  if (!live() || free_close_posted_ || free_budget_.take(mono_now())) return;
  free_close_posted_ = true;
  boost::asio::post(ctx_.io, [w = weak_from_this()] {
    if (auto s = w.lock()) {
      s->rate_limited("free_messages");
      s->pump();
    }
  });
}

void Session::spend_free_message(core::Timestamp now) {
  if (!live() || free_budget_.take(now)) return;
  rate_limited("free_messages");
  pump();
}

void Session::on_close_frame(std::uint16_t code, const std::string& reason) {
  if (!live()) return;
  conn_.reset();
  core_.receive_close(code, reason, mono_now());
  pump();
}

void Session::on_transport_lost() {
  if (!live()) return;
  conn_.reset();
  core_.transport_lost(mono_now());
  pump();
}

void Session::on_outbound_overflow() {
  if (!live()) return;
  log_warn("policy", {{"session", id_}, {"decision", "close"}, {"reason", "outbound_overflow"}});
  ctx_.metrics.policy_rejections["outbound_overflow"]++;
  core_.close(core::CloseCode::internal, "outbound queue overflow", mono_now());
  pump();
}

void Session::set_transport_paused(bool on) {
  if (!live()) return;
  core_.set_paused(core::PauseReason::transport, on, mono_now());
  pump();
}

void Session::shutdown(const std::string& reason) {
  if (!live()) return;
  core_.close(core::CloseCode::going_away, reason, mono_now());
  pump();
}

void Session::discard() {
  discarded_ = true;
  conn_.reset();
  timer_.cancel();
  for (auto& [id, r] : relays_)
    r->stop();
  relays_.clear();
  ctx_.resume.remove(this);
  ctx_.registry.remove_session(id_);
}

void Session::pump() {
  if (pumping_) {
    again_ = true;
    return;
  }
  pumping_ = true;
  auto self = shared_from_this();  // events may drop the last outside reference
  do {
    again_ = false;
    flush_output();
    while (!discarded_) {
      auto e = core_.poll_event();
      if (!e) break;
      try {
        handle(*e);
      } catch (const std::exception& ex) {
        log_event(LogLevel::error, "internal", {{"session", id_}, {"what", ex.what()}});
        core_.close(core::CloseCode::internal, "internal error", mono_now());
      }
      flush_output();
    }
  } while (again_ && !discarded_);
  pumping_ = false;
  if (!discarded_) arm_timer();
}

void Session::flush_output() {
  auto c = conn_.lock();
  while (auto m = core_.poll_output()) {
    if (c) c->send(std::move(*m));
  }
}

void Session::arm_timer() {
  // keep_earlier: the deadline moves later with every message (heartbeat from the last send or
  // receive). A timer already armed no later than it stays: when it fires early the handler finds
  // nothing due and re-arms, about once per heartbeat interval instead of once per message.
  timer_.arm(core_.next_timeout(), [w = weak_from_this()] {
    auto s = w.lock();
    if (!s || !s->live()) return;
    const core::Timestamp now = mono_now();
    if (auto due = s->core_.next_timeout(); due && *due <= now) s->core_.handle_timeout(now);
    s->pump();
  });
}

void Session::handle(core::Event& e) {
  using namespace core::event;  // NOLINT(google-build-using-namespace)
  if (auto* h = std::get_if<HelloReceived>(&e)) {
    ctx_.registry.on_hello(shared_from_this(), h->hello);
    return;
  }
  if (auto* r = std::get_if<ResumeRequested>(&e)) {
    ctx_.registry.on_resume(shared_from_this(), r->hello);
    return;
  }
  if (auto* o = std::get_if<OpenRequested>(&e)) {
    on_open(o->open);
    return;
  }
  if (auto* d = std::get_if<ChannelData>(&e)) {
    delivered_ += d->data.size();
    free_budget_.refill(d->data.size());
    auto it = relays_.find(d->id);
    if (it != relays_.end()) {
      it->second->on_client_data(std::move(d->data));
    } else {
      (void)core_.consume(d->id, d->data.size(), mono_now());
    }
    return;
  }
  if (auto* w = std::get_if<ChannelWritable>(&e)) {
    if (auto it = relays_.find(w->id); it != relays_.end()) it->second->on_writable();
    return;
  }
  if (auto* c = std::get_if<ChannelClosed>(&e)) {
    if (auto it = relays_.find(c->id); it != relays_.end()) {
      it->second->stop_after_flush();
      relays_.erase(it);
    }
    log_info("channel_close", {{"session", id_},
                               {"channel", c->id},
                               {"reason", c->reason},
                               {"origin", std::string(core::to_string(c->origin))}});
    return;
  }
  if (auto* p = std::get_if<core::event::Policy>(&e)) {
    switch (p->kind) {
      case core::PolicyKind::flow_pause:
        log_debug("flow_pause", {{"session", id_}, {"reasons", p->reasons}, {"why", p->detail}});
        break;
      case core::PolicyKind::flow_resume:
        log_debug("flow_resume", {{"session", id_}, {"why", p->detail}});
        break;
      case core::PolicyKind::rate_limited:
        ctx_.metrics.policy_rejections["rate_limited"]++;
        log_warn("policy", {{"session", id_},
                            {"decision", "close"},
                            {"reason", "rate_limited"},
                            {"detail", p->detail}});
        break;
      case core::PolicyKind::channel_limit:
        ctx_.metrics.policy_rejections["channel_limit"]++;
        log_warn("policy", {{"session", id_},
                            {"decision", "close"},
                            {"reason", "channel_limit"},
                            {"channel", p->id}});
        break;
      case core::PolicyKind::credit_grant:
        break;
    }
    return;
  }
  if (auto* d = std::get_if<Diagnostic>(&e)) {
    if (d->code == core::DiagCode::rtt_sample) {
      if (auto rtt = core_.last_rtt_sample())
        ctx_.metrics.observe_rtt(static_cast<double>(rtt->ns) / 1e9);
    } else if (d->code == core::DiagCode::ping_received) {
      if (!ctx_.rates.pings.take(ip_, std::chrono::steady_clock::now())) rate_limited("pings");
      return;
    }
    log_debug(
        "diag",
        {{"session", id_}, {"code", std::string(core::to_string(d->code))}, {"detail", d->detail}});
    return;
  }
  if (auto* c = std::get_if<Closed>(&e)) {
    on_closed(*c);
    return;
  }
}

void Session::rate_limited(const char* limit) {
  if (!live() || core_.state() == core::SessionState::closed) return;
  ctx_.metrics.policy_rejections[std::string("rate_") + limit]++;
  log_warn("policy", {{"session", id_},
                      {"ip", ip_},
                      {"principal", principal_},
                      {"decision", "close"},
                      {"reason", "rate_limited"},
                      {"limit", limit},
                      {"code", 4004}});
  core_.close(core::CloseCode::policy_denied, "rate limited", mono_now());
}

void Session::on_open(const core::Open& o) {
  const core::Timestamp now = mono_now();
  if (!ctx_.rates.opens.take(ip_, std::chrono::steady_clock::now())) {
    rate_limited("opens");
    return;
  }
  if (o.kind != "tcp") {
    log_info("open", {{"session", id_}, {"channel", o.id}, {"result", "unsupported_kind"}});
    (void)core_.reject_open(o.id, "unsupported_kind", "only kind tcp is supported", now);
    return;
  }
  auto relay =
      std::make_shared<Relay>(ctx_, weak_from_this(), o.id, o.target, targets_, principal_);
  relays_[o.id] = relay;
  relay->start();
}

void Session::remove_relay(core::ChannelId id, const Relay* r) {
  auto it = relays_.find(id);
  if (it != relays_.end() && it->second.get() == r) relays_.erase(it);
}

void Session::detach_connection() {
  if (auto c = conn_.lock()) c->release_session();
  conn_.reset();
}

void Session::on_closed(const core::event::Closed& c) {
  const std::string code = std::to_string(static_cast<unsigned>(c.code));
  log_info(c.resumable ? "detach" : "close", {{"session", id_},
                                              {"principal", principal_},
                                              {"code", static_cast<unsigned>(c.code)},
                                              {"origin", std::string(core::to_string(c.origin))},
                                              {"reason", c.reason},
                                              {"channels", relays_.size()}});
  flush_output();  // the close frame, if the core queued one
  detach_connection();
  if (c.resumable) return;
  ctx_.metrics.closes[code]++;
  finished_ = true;
  for (auto& [id, r] : relays_)
    r->stop();
  relays_.clear();
  ctx_.resume.remove(this);
  timer_.cancel();
  ctx_.registry.remove_session(id_);
}

// Every byte once: the replay buffers (sent, unacknowledged: this includes the payload of every
// queued data message, which only references them), what the core's and the connection's queues
// own themselves (headers, control messages, json-base64.v1 text), and the relays' buffers
// towards the targets. The transport pause still uses Connection::queued_bytes() (wire size).
std::uint64_t Session::buffered_bytes() const {
  std::uint64_t n = core_.total_replay_bytes() + core_.output_bytes();
  if (auto c = conn_.lock()) n += c->owned_bytes();
  for (const auto& [id, r] : relays_)
    n += r->buffered();
  return n;
}

}  // namespace mana::gateway
