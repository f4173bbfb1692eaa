// SPDX-License-Identifier: Apache-2.0
#include "session_registry.hpp"

#include <algorithm>
#include <vector>

#include <boost/asio/post.hpp>

#include "connection.hpp"
#include "forward_relay.hpp"
#include "handover.hpp"
#include "log.hpp"
#include "session.hpp"

namespace mana::gateway {

namespace asio = boost::asio;

std::string SessionRegistry::admit(const std::string& ip) const {
  if (connections_ >= ctx_.cfg.max_connections) return "max_connections";
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && it->second >= ctx_.cfg.max_connections_per_ip)
    return "max_connections_per_ip";
  return {};
}

void SessionRegistry::count_connection(const std::string& ip) {
  connections_++;
  per_ip_[ip]++;
  ctx_.metrics.connections_total++;
  ctx_.metrics.connections_active++;
}

void SessionRegistry::connection_closed(const std::string& ip) {
  if (connections_ > 0) connections_--;
  if (ctx_.metrics.connections_active > 0) ctx_.metrics.connections_active--;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

void SessionRegistry::on_upgraded(const std::shared_ptr<Connection>& c, const std::string& origin) {
  const std::string refusal = admit(c->client_ip());
  count_connection(c->client_ip());
  log_info("connect", {{"conn", c->id()},
                       {"ip", c->client_ip()},
                       {"origin", origin.empty() ? std::string("(none)") : origin.substr(0, 200)}});
  c->start();
  if (!refusal.empty()) {
    ctx_.metrics.policy_rejections[refusal]++;
    log_warn("policy", {{"conn", c->id()},
                        {"ip", c->client_ip()},
                        {"decision", "close"},
                        {"reason", refusal},
                        {"code", 4010}});
    c->close_now(static_cast<std::uint16_t>(core::CloseCode::server_overload), "server overload");
    return;
  }
  auto s = std::make_shared<Session>(ctx_, c->client_ip(), origin);
  sessions_[s->id()] = s;
  s->attach(c);
  s->pump();  // arms the handshake timeout
}

void SessionRegistry::on_hello(const std::shared_ptr<Session>& s, const core::Hello& hello) {
  const core::Timestamp now = mono_now();
  const AuthResult a = ctx_.auth.check(hello.auth, unix_now());
  if (!a.ok) {
    ctx_.metrics.policy_rejections["auth"]++;
    log_info("auth",
             {{"session", s->id()}, {"ip", s->client_ip()}, {"result", "fail"}, {"reason", a.why}});
    s->core().reject(core::Errc::auth_failed, "authentication failed", now);
    return;
  }
  if (stopping()) {
    s->core().reject(core::Errc::going_away, "server shutdown", now);
    return;
  }
  if (phase_ == Phase::draining) {
    // Resumable code, no token: the client retries with backoff, through the balancer, which
    // sends it elsewhere (this gateway's /healthz answers 503).
    ctx_.metrics.policy_rejections["draining"]++;
    log_info("policy", {{"session", s->id()},
                        {"ip", s->client_ip()},
                        {"decision", "close"},
                        {"reason", "draining"},
                        {"code", 4010}});
    s->core().reject(core::Errc::server_overload, "server draining", now);
    return;
  }
  std::uint32_t mine = 0;
  for (const auto& [id, other] : sessions_)
    if (other != s && other->live() && other->authenticated() && other->principal() == a.principal)
      ++mine;
  if (mine >= ctx_.cfg.max_sessions_per_principal) {
    ctx_.metrics.policy_rejections["max_sessions_per_principal"]++;
    log_warn("policy", {{"session", s->id()},
                        {"principal", a.principal},
                        {"decision", "close"},
                        {"reason", "max_sessions_per_principal"},
                        {"code", 4010}});
    s->core().reject(core::Errc::server_overload, "too many sessions", now);
    return;
  }
  s->set_principal(a.principal, a.targets);
  std::string token = ctx_.cfg.resume ? ResumeTable::new_token() : std::string();
  if (auto r = s->core().accept(core::AcceptParams{token}, now); !r) {
    log_warn("accept_failed", {{"session", s->id()}, {"detail", r.error().detail}});
    return;
  }
  const bool resumable = !s->core().resume_token().empty();
  if (resumable) ctx_.resume.add(s->core().resume_token(), s);
  log_info("auth",
           {{"session", s->id()},
            {"ip", s->client_ip()},
            {"result", "ok"},
            {"principal", a.principal},
            {"scheme",
             hello.auth && hello.auth->scheme == core::Auth::Scheme::bearer ? "bearer" : "none"},
            {"profile", hello.caps.profile},
            {"resume", resumable},
            {"target_claims", a.targets ? static_cast<long>(a.targets->size()) : -1L}});
}

void SessionRegistry::on_resume(const std::shared_ptr<Session>& fresh, const core::Hello& hello) {
  const core::Timestamp now = mono_now();
  const auto steady = std::chrono::steady_clock::now();
  // Per-IP budget of failed resume attempts: once spent, further attempts from that address
  // are refused with 4004 before any token lookup (token guessing stays slow).
  if (!ctx_.rates.resume_failures.has_token(fresh->client_ip(), steady)) {
    ctx_.metrics.policy_rejections["rate_resume_fail"]++;
    ctx_.metrics.resumes["rate_limited"]++;
    log_warn("policy", {{"session", fresh->id()},
                        {"ip", fresh->client_ip()},
                        {"decision", "close"},
                        {"reason", "rate_limited"},
                        {"limit", "resume_failures"},
                        {"code", 4004}});
    fresh->core().reject(core::Errc::policy_denied, "rate limited", now);
    return;
  }
  const AuthResult a = ctx_.auth.check(hello.auth, unix_now());
  if (!a.ok) {
    (void)ctx_.rates.resume_failures.take(fresh->client_ip(), steady);
    ctx_.metrics.policy_rejections["auth"]++;
    log_info("auth", {{"session", fresh->id()},
                      {"ip", fresh->client_ip()},
                      {"result", "fail"},
                      {"reason", a.why},
                      {"resume", true}});
    fresh->core().reject(core::Errc::auth_failed, "authentication failed", now);
    return;
  }
  // Same-host upgrade: a token this process never issued may belong to the old process.
  if (ctx_.handover != nullptr && ctx_.handover->forwarding() &&
      !ctx_.resume.find(hello.resume->token) && forward(fresh, a.principal))
    return;
  auto refuse = [&](core::Errc code, const char* text, const char* outcome) {
    (void)ctx_.rates.resume_failures.take(fresh->client_ip(), steady);
    ctx_.metrics.resumes[outcome]++;
    log_info("resume", {{"session", fresh->id()},
                        {"ip", fresh->client_ip()},
                        {"principal", a.principal},
                        {"result", outcome}});
    fresh->core().reject(code, text, now);
  };
  const std::string& token = hello.resume->token;
  std::shared_ptr<Session> existing = ctx_.resume.find(token);
  // Unknown, expired, spent and foreign tokens take the same path and get the same answer.
  const bool token_ok = existing && existing->core().matches_token(token);
  const bool ok = token_ok && existing != fresh && existing->live() &&
                  existing->principal() == a.principal && existing->origin() == fresh->origin() &&
                  !stopping();
  if (!ok) return refuse(core::Errc::resume_rejected, "resume rejected", "rejected");
  std::string next = ResumeTable::new_token();
  if (auto r = existing->core().resume(hello, next, now); !r) {
    if (r.error().code == core::Errc::resume_out_of_range)
      return refuse(core::Errc::resume_out_of_range, "resume offset out of range", "out_of_range");
    return refuse(core::Errc::resume_rejected, "resume rejected", "rejected");
  }
  ctx_.resume.replace(existing, next, existing->core().previous_token());
  auto old_conn = existing->connection();
  auto conn = fresh->connection();
  fresh->discard();
  if (old_conn && old_conn != conn) old_conn->supersede();
  if (conn) existing->attach(conn);
  ctx_.metrics.resumes["accepted"]++;
  log_info("resume", {{"session", existing->id()},
                      {"ip", existing->client_ip()},
                      {"principal", a.principal},
                      {"result", "accepted"},
                      {"superseded", old_conn != nullptr},
                      {"resumes", existing->core().resume_count()}});
  asio::post(ctx_.io, [existing] { existing->pump(); });
}

bool SessionRegistry::forward(const std::shared_ptr<Session>& fresh, const std::string& principal) {
  auto conn = fresh->connection();
  std::string first = fresh->take_first_message();
  if (!conn || first.empty()) return false;
  Fd up = ctx_.handover->open_forward(fresh->client_ip(), fresh->origin());
  if (!up.valid()) {
    ctx_.metrics.forwarded_resumes["old_gone"]++;
    return false;
  }
  auto ws = conn->release_stream();
  if (!ws) {
    ctx_.metrics.forwarded_resumes["failed"]++;
    return false;  // `up` closes: the old process sees a peer that went away
  }
  const bool text = fresh->first_message_text();
  fresh->discard();
  ctx_.metrics.forwarded_resumes["forwarded"]++;
  log_info("resume", {{"session", fresh->id()},
                      {"ip", fresh->client_ip()},
                      {"principal", principal},
                      {"result", "forwarded"}});
  std::make_shared<ForwardRelay>(ctx_, std::move(*ws), std::move(up), std::move(first), text,
                                 fresh->client_ip())
      ->start();
  return true;
}

void SessionRegistry::remove_session(std::uint64_t id) {
  asio::post(ctx_.io, [this, id] {
    sessions_.erase(id);
    if (phase_ != Phase::running && on_removed_) on_removed_();
  });
}

void SessionRegistry::stop_all(const std::string& reason) {
  phase_ = Phase::stopping;
  std::vector<std::shared_ptr<Session>> all;
  all.reserve(sessions_.size());
  for (const auto& [id, s] : sessions_)
    all.push_back(s);
  for (auto& s : all)
    s->shutdown(reason);
}

BufferGauge SessionRegistry::buffer_gauge() const {
  BufferGauge g;
  for (const auto& [id, s] : sessions_) {
    if (!s->live()) continue;
    const std::uint64_t b = s->buffered_bytes();
    g.total += b;
    g.max_session = std::max(g.max_session, b);
    g.sessions++;
    if (s->core().state() == core::SessionState::detached) g.detached++;
  }
  return g;
}

}  // namespace mana::gateway
