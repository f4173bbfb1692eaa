// SPDX-License-Identifier: Apache-2.0
#include "listener.hpp"

#include <algorithm>
#include <csignal>

#include <openssl/ssl.h>

#include "client_address.hpp"
#include "forward_relay.hpp"
#include "log.hpp"
#include "proxy_accept.hpp"
#include "session_registry.hpp"

namespace mana::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

Listener::Listener(Context& ctx, SessionRegistry& registry)
    : ctx_(ctx),
      registry_(registry),
      acceptor_(ctx.io),
      signals_(ctx.io, SIGTERM, SIGINT, SIGHUP),
      drain_timer_(ctx.io),
      accept_timer_(ctx.io) {
  if (!ctx_.cfg.tls_cert_file.empty()) tls_ = make_tls(ctx_.cfg);
  if (!ctx_.cfg.handover_socket.empty()) make_handover();
}

Listener::~Listener() = default;

void Listener::make_handover() {
  Handover::Hooks hooks;
  hooks.give = [this] {
    // Invariant 1 of handover.hpp: stop accepting first; connections wait in the backlog.
    handing_over_ = true;
    boost::system::error_code ignored;
    acceptor_.cancel(ignored);
    accept_timer_.cancel();
    return acceptor_.native_handle();
  };
  hooks.failed = [this] {
    handing_over_ = false;
    log_warn("handover_failed", {{"accepting", !shutting_down_}});
    if (!shutting_down_ && acceptor_.is_open()) do_accept();
  };
  hooks.taken = [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);  // the new process holds the same socket
    if (ctx_.cfg.drain_timeout_ms > 0)
      begin_drain();
    else
      begin_shutdown("server shutdown");
  };
  hooks.forwarded = [this](Fd fd, std::string ip, std::string origin) {
    if (registry_.stopping()) return;
    serve_forwarded(ctx_, std::move(fd), std::move(ip), std::move(origin));
  };
  handover_ = std::make_unique<Handover>(ctx_, std::move(hooks));
  ctx_.handover = handover_.get();
}

bool Listener::open_acceptor() {
  const tcp::endpoint ep(asio::ip::make_address(ctx_.cfg.listen_host), ctx_.cfg.listen_port);
  if (handover_) {
    HandoverError err = HandoverError::none;
    Fd fd = handover_->take(err);
    if (fd.valid()) {
      acceptor_.assign(ep.protocol(), fd.release());
      return true;
    }
    if (err != HandoverError::no_peer)
      throw std::runtime_error(std::string("handover from the running gateway refused: ") +
                               handover_error_name(err));
  }
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  return false;
}

std::unique_ptr<asio::ssl::context> Listener::make_tls(const Config& cfg) {
  // wss: TLS 1.2 or newer, OpenSSL's default cipher list. A key that does not match the
  // certificate fails in use_private_key_file.
  auto tls = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  if (SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION) != 1)
    throw std::runtime_error("tls: cannot set the minimum protocol version");
  tls->use_certificate_chain_file(cfg.tls_cert_file);
  tls->use_private_key_file(cfg.tls_key_file, asio::ssl::context::pem);
  return tls;
}

void Listener::start() {
  const bool taken = open_acceptor();
  bound_port_ = acceptor_.local_endpoint().port();
  ctx_.route_id = ctx_.cfg.route_id.empty() ? default_route_id(ctx_.cfg.listen_host, bound_port_)
                                            : ctx_.cfg.route_id;
  wait_signal();
  do_accept();
  if (handover_) {
    handover_->listen();
    if (taken) handover_->confirm_taken();
  }
  // Last: launchers take this line as "ready", which includes the handover socket.
  log_always("listening", {{"address", ctx_.cfg.listen_host},
                           {"port", bound_port_},
                           {"route", ctx_.route_id},
                           {"origins", ctx_.cfg.origins.size()},
                           {"targets", ctx_.cfg.targets.size()},
                           {"jwt", ctx_.auth.jwt_enabled()},
                           {"jwks_keys", ctx_.auth.key_count()},
                           {"allow_none", ctx_.cfg.allow_none},
                           {"allow_missing_origin", ctx_.cfg.allow_missing_origin},
                           {"tls", tls_ != nullptr},
                           {"handover", taken       ? "taken"
                                        : handover_ ? "ready"
                                                    : "off"}});
}

void Listener::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || shutting_down_ || handing_over_) return;
      // Out of descriptors or memory: the pending connection stays in the backlog, so accepting
      // again at once fails at once (a busy loop). Back off 10 ms doubling to 1 s; log the first
      // failure of each episode and its end.
      accept_backoff_ms_ = std::clamp<std::uint32_t>(accept_backoff_ms_ * 2, 10, 1000);
      ctx_.metrics.accept_errors++;
      if (!accept_failing_)
        log_warn("accept_error", {{"error", ec.message()}, {"retry_ms", accept_backoff_ms_}});
      accept_failing_ = true;
      accept_timer_.expires_after(std::chrono::milliseconds(accept_backoff_ms_));
      accept_timer_.async_wait([this](const boost::system::error_code& e) {
        if (!e && !shutting_down_ && !handing_over_) do_accept();
      });
      return;
    }
    if (accept_failing_) log_info("accept_recovered", {{"errors", ctx_.metrics.accept_errors}});
    accept_failing_ = false;
    accept_backoff_ms_ = 0;
    on_accept(std::move(sock));
    if (!handing_over_) do_accept();
  });
}

void Listener::on_accept(tcp::socket sock) {
  try {
    boost::system::error_code e2;
    const auto remote = sock.remote_endpoint(e2);
    ClientInfo client;
    if (!e2) client.peer = normalise_address(remote.address());
    client.address = client.peer;
    client.key = e2 ? std::string("?") : limit_key(client.peer, ctx_.cfg.ipv6_prefix);
    log_debug("tcp_accept", {{"ip", client.key}});
    // Small control messages (flow grants, pongs) must not wait for delayed ACKs (Nagle).
    sock.set_option(tcp::no_delay(true), e2);
    if (http_->total >= ctx_.cfg.max_http_connections)
      return refuse_http_phase(sock, client.key, "max_http_connections");
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.cfg.http_timeout_ms);
    const bool trusted = ctx_.cfg.trusted_proxies.contains(client.peer);
    if (ctx_.cfg.proxy_protocol != ProxyMode::off) {
      if (!trusted) return refuse_proxy(sock, client.peer, "proxy_untrusted", ProxyError::none);
      // Counted globally now, per IP once the header names the client.
      auto slot = std::make_shared<HttpSlot>(http_, std::string());
      read_proxy_header(std::move(sock), client.peer, ctx_.cfg.proxy_protocol, deadline,
                        [this, client, slot, deadline](tcp::socket s, ProxyAcceptResult r) mutable {
                          on_proxy_header(std::move(s), std::move(client), std::move(*slot),
                                          std::move(r), deadline);
                        });
      return;
    }
    // A trusted proxy's connections are counted per IP once their request names the client
    // (HttpHandler): on accept every one of them would carry the proxy's address.
    if (!trusted) {
      if (auto it = http_->per_ip.find(client.key);
          it != http_->per_ip.end() && it->second >= ctx_.cfg.max_http_connections_per_ip)
        return refuse_http_phase(sock, client.key, "max_http_connections_per_ip");
    }
    HttpSlot slot(http_, trusted ? std::string() : client.key);
    serve_http(ctx_, std::move(sock), std::move(client), std::move(slot), tls_.get(), std::string(),
               deadline);
  } catch (const std::exception& ex) {
    log_event(LogLevel::error, "internal", {{"what", ex.what()}});
  }
}

void Listener::on_proxy_header(tcp::socket sock, ClientInfo client, HttpSlot slot,
                               ProxyAcceptResult r,
                               std::chrono::steady_clock::time_point deadline) {
  try {
    if (r.reject != nullptr) return refuse_proxy(sock, client.peer, r.reject, r.error);
    client.address = r.client;
    client.key = limit_key(r.client, ctx_.cfg.ipv6_prefix);
    client.via = r.version == 1 ? "proxy_v1" : "proxy_v2";
    if (client.address != client.peer)
      log_debug("client_address", {{"ip", client.key},
                                   {"address", client.address.to_string()},
                                   {"peer", client.peer.to_string()},
                                   {"via", client.via}});
    if (!slot.assign_ip(client.key, ctx_.cfg.max_http_connections_per_ip))
      return refuse_http_phase(sock, client.key, "max_http_connections_per_ip");
    serve_http(ctx_, std::move(sock), std::move(client), std::move(slot), tls_.get(),
               std::move(r.leftover), deadline);
  } catch (const std::exception& ex) {
    log_event(LogLevel::error, "internal", {{"what", ex.what()}});
  }
}

void Listener::refuse_proxy(tcp::socket& sock, const boost::asio::ip::address& peer,
                            const char* reason, ProxyError error) {
  ctx_.metrics.http_rejects[reason]++;
  log_info("proxy_refused",
           {{"peer", peer.to_string()}, {"reason", reason}, {"error", proxy_error_name(error)}});
  // No answer: whatever is on the other end does not speak the PROXY protocol to us.
  boost::system::error_code ignored;
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  sock.close(ignored);
}

void Listener::refuse_http_phase(tcp::socket& sock, const std::string& ip, const char* reason) {
  ctx_.metrics.http_rejects[reason]++;
  ctx_.metrics.policy_rejections[reason]++;
  log_warn("policy", {{"ip", ip}, {"decision", "deny"}, {"reason", reason}, {"phase", "http"}});
  // Best effort, never blocking: a fresh socket's send buffer is empty. Over TLS the client
  // sees a failed handshake instead.
  static constexpr std::string_view busy =
      "HTTP/1.1 503 Service Unavailable\r\nServer: mana-gateway\r\nContent-Length: 0\r\n"
      "Connection: close\r\n\r\n";
  boost::system::error_code ignored;
  sock.non_blocking(true, ignored);
  if (!tls_) sock.write_some(asio::buffer(busy.data(), busy.size()), ignored);
  sock.shutdown(tcp::socket::shutdown_both, ignored);
  sock.close(ignored);
}

void Listener::wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    on_signal(sig);
    if (!finished_) wait_signal();
  });
}

void Listener::on_signal(int sig) {
  log_info("signal", {{"signal", sig}});
  if (sig == SIGHUP) {
    if (on_reload_ && !shutting_down_) on_reload_();
    return;
  }
  if (draining_ || ctx_.cfg.drain_timeout_ms == 0) return begin_shutdown("server shutdown");
  begin_drain();
}

void Listener::begin_drain() {
  if (draining_ || shutting_down_) return;
  draining_ = true;
  drain_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.cfg.drain_timeout_ms);
  log_info("drain", {{"timeout_ms", ctx_.cfg.drain_timeout_ms},
                     {"sessions", registry_.session_count()},
                     {"connections", registry_.connection_count()}});
  ctx_.metrics.draining = 1;
  registry_.begin_drain();
  registry_.set_on_removed([this] { check_drained(); });
  check_drained();
}

void Listener::begin_shutdown(const std::string& reason) {
  if (shutting_down_) return;
  shutting_down_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_timer_.cancel();
  shutdown_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(ctx_.cfg.shutdown_grace_ms);
  registry_.set_on_removed([this] { check_drained(); });
  ctx_.metrics.draining = 1;
  registry_.stop_all(reason);
  check_drained();
}

void Listener::check_drained() {
  if (finished_) return;
  if (registry_.connection_count() == 0 && registry_.session_count() == 0) {
    log_info("drained", {});
    return finish();
  }
  const auto now = std::chrono::steady_clock::now();
  if (shutting_down_ && now >= shutdown_deadline_) {
    log_warn("shutdown_grace_expired", {{"connections", registry_.connection_count()},
                                        {"sessions", registry_.session_count()}});
    finish();
    ctx_.io.stop();
    return;
  }
  if (!shutting_down_ && now >= drain_deadline_) {
    log_warn("drain_timeout", {{"connections", registry_.connection_count()},
                               {"sessions", registry_.session_count()}});
    return begin_shutdown("server shutdown: drain timeout");
  }
  drain_timer_.expires_after(std::chrono::milliseconds(50));
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check_drained();
  });
}

void Listener::finish() {
  finished_ = true;
  shutting_down_ = true;  // the accept loop stops re-arming
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_timer_.cancel();
  drain_timer_.cancel();
  signals_.cancel();
  if (handover_) handover_->stop();
}

}  // namespace mana::gateway
