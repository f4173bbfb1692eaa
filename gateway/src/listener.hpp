// SPDX-License-Identifier: Apache-2.0
// Listener: the process's edge. The TCP acceptor (optionally TLS: the ssl::context lives here),
// the HTTP-phase caps on accept (server.max_http_connections[_per_ip]: a fixed 503 and close,
// before any byte is read), the accept back-off after EMFILE and the like, the signals, the drain
// and the stop. Everything after accept is the HttpHandler's; sessions are the SessionRegistry's.
//
// Signals (the only admin interface: the kernel lets only root or the same user send them):
//   SIGTERM/SIGINT  with server.drain_timeout_ms > 0: drain. The listener keeps accepting (resumes
//                   of sessions held here must still arrive), /healthz answers 503, fresh hellos
//                   get 4010; once no session and no WebSocket is left the gateway logs `drained`,
//                   closes the listener and exits 0. When drain_timeout_ms passes first, every
//                   session left is closed with 1001 "server shutdown: drain timeout" (stop).
//                   With drain_timeout_ms = 0, and on a second SIGTERM/SIGINT: stop at once.
//   stop            the listener closes, new upgrades get 503, every session is closed with 1001;
//                   exit 0 once drained or after server.shutdown_grace_ms (the event loop stops).
//   SIGHUP          the reload callback (Server::reload): config, TLS certificate, JWT keys.
//
// Behind reverse proxies (docs/gateway.md): with server.proxy_protocol on, a peer outside
// server.trusted_proxies is closed at once (proxy_untrusted); a trusted one must send a PROXY
// header within the HTTP-phase deadline (proxy_accept.hpp), which names the client that the
// per-IP HTTP-phase cap, and everything after it, counts. Without the PROXY protocol a trusted
// proxy's connections are counted per IP only once their request names the client.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "handover.hpp"
#include "http_handler.hpp"
#include "proxy_accept.hpp"

namespace mana::gateway {

class SessionRegistry;

class Listener {
 public:
  // Loads the TLS certificate and key when configured (throws on errors: startup fails).
  Listener(Context& ctx, SessionRegistry& registry);
  ~Listener();
  // A TLS server context for cfg's certificate chain and key (TLS 1.2+); throws on errors.
  static std::unique_ptr<boost::asio::ssl::context> make_tls(const Config& cfg);
  // Connections accepted from now on use `tls` (connections in progress keep theirs: each SSL
  // object holds a reference to its SSL_CTX). Only while TLS is on.
  void replace_tls(std::unique_ptr<boost::asio::ssl::context> tls) noexcept {
    if (tls_ && tls) tls_ = std::move(tls);
  }
  // SIGHUP runs this.
  void set_on_reload(std::function<void()> f) { on_reload_ = std::move(f); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and starts accepting (throws on bind errors).
  void start();
  // Hands one connected socket to the HTTP phase, as if accepted (HTTP-phase caps included).
  void on_accept(boost::asio::ip::tcp::socket sock);
  [[nodiscard]] std::uint16_t bound_port() const noexcept { return bound_port_; }
  [[nodiscard]] std::uint32_t http_phase_count() const noexcept { return http_->total; }
  [[nodiscard]] bool tls() const noexcept { return tls_ != nullptr; }

 private:
  void do_accept();
  // Refuses a connection over the HTTP-phase caps with a fixed 503 (best effort) and closes it.
  void refuse_http_phase(boost::asio::ip::tcp::socket& sock, const std::string& ip,
                         const char* reason);
  // [server] proxy_protocol: the header was read (or not: r.reject says why).
  void on_proxy_header(boost::asio::ip::tcp::socket sock, ClientInfo client, HttpSlot slot,
                       ProxyAcceptResult r, std::chrono::steady_clock::time_point deadline);
  // Closes a connection refused in the PROXY protocol step, without an answer.
  void refuse_proxy(boost::asio::ip::tcp::socket& sock, const boost::asio::ip::address& peer,
                    const char* reason, ProxyError error);
  // Binds the configured address, or takes the listener of the running process (handover).
  // True when it was taken over.
  bool open_acceptor();
  void make_handover();
  void wait_signal();
  void on_signal(int sig);
  void begin_drain();
  void begin_shutdown(const std::string& reason);
  void check_drained();
  // Drained or stopped: the listener and the timers go, the event loop runs out.
  void finish();

  Context& ctx_;
  SessionRegistry& registry_;
  std::shared_ptr<HttpCounts> http_ = std::make_shared<HttpCounts>();
  std::unique_ptr<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer accept_timer_;  // accept back-off after EMFILE and the like
  std::uint32_t accept_backoff_ms_ = 0;
  bool accept_failing_ = false;
  bool draining_ = false;
  bool shutting_down_ = false;
  bool finished_ = false;
  std::function<void()> on_reload_;
  // [server] handover_socket; null without one.
  std::unique_ptr<Handover> handover_;
  bool handing_over_ = false;  // the listener was sent to a new process: not accepting
  std::uint16_t bound_port_ = 0;
  std::chrono::steady_clock::time_point drain_deadline_;
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

}  // namespace mana::gateway
