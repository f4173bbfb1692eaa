// Server: TCP acceptor (optionally TLS), HTTP/1.1 request handling and the WebSocket upgrade,
// session registry, authentication, resume lookups, connection caps and SIGTERM draining.
//
// Upgrade checks, in order, all before any 101: header size/count limits (431), path (404),
// Origin exact-match allowlist (403; a missing Origin only with origins.allow_missing),
// subprotocol `mana.ssh.v1` offered (400) - the response selects it; permessage-deflate stays
// off. Global and per-IP connection caps close the fresh WebSocket with 4010. /healthz and
// /metrics are answered on plain GETs. Connections still in the HTTP phase are capped globally
// and per IP (server.max_http_connections[_per_ip]: 503 and close) and bounded in time by
// server.http_timeout_ms. Per-IP token buckets ([rate]) limit failed resume attempts here and
// channel opens and pings in Session (4004).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "mana/core/messages.hpp"

namespace mana::gateway {

class Session;
class Connection;

// Connections still in the HTTP phase (TLS handshake, request, upgrade), globally and per IP.
// Shared with the slots so that a handler destroyed late (at io_context teardown) stays safe.
struct HttpCounts {
  std::uint32_t total = 0;
  std::map<std::string, std::uint32_t> per_ip;
};

// One counted HTTP-phase connection; released on upgrade or destruction. Move-only.
class HttpSlot {
 public:
  HttpSlot(std::shared_ptr<HttpCounts> counts, std::string ip);
  ~HttpSlot();
  HttpSlot(HttpSlot&& o) noexcept;
  HttpSlot& operator=(HttpSlot&&) = delete;
  HttpSlot(const HttpSlot&) = delete;
  HttpSlot& operator=(const HttpSlot&) = delete;
  void release() noexcept;

 private:
  std::shared_ptr<HttpCounts> counts_;
  std::string ip_;
};

class Server {
 public:
  Server(boost::asio::io_context& io, const Config& cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting (throws on bind errors).
  void start();
  // Serves one already-connected stream socket exactly as an accepted one (HTTP phase caps,
  // request, upgrade, session). The upgrade fuzz target drives the gateway through a socket pair
  // this way, without start() and without a listening socket.
  void serve(boost::asio::ip::tcp::socket sock) { on_accept(std::move(sock)); }

  // ---- called by sessions and connections ----------------------------------------
  void on_hello(const std::shared_ptr<Session>& s, const core::Hello& hello);
  void on_resume(const std::shared_ptr<Session>& fresh, const core::Hello& hello);
  void remove_session(std::uint64_t id);
  void connection_closed(const std::string& ip);
  // Upgrade finished: create the Connection (and its handshake Session) or refuse with 4010.
  void on_upgraded(const std::shared_ptr<Connection>& c, const std::string& origin);

  [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_; }
  // GET /debug/sessions (debug_view.cpp): both sides' view of every channel of the sessions of
  // `principal` (all sessions when empty), as JSON. No tokens, no payload bytes.
  [[nodiscard]] std::string debug_sessions(std::string_view principal) const;
  [[nodiscard]] Context& context() noexcept { return ctx_; }
  [[nodiscard]] std::uint16_t bound_port() const noexcept { return bound_port_; }

  // Admission for a new WebSocket (global and per-IP caps). Returns "" or the refusal reason.
  [[nodiscard]] std::string admit(const std::string& ip) const;
  void count_connection(const std::string& ip);

 private:
  void do_accept();
  void on_accept(boost::asio::ip::tcp::socket sock);
  // Refuses a connection over the HTTP-phase caps with a fixed 503 (best effort) and closes it.
  void refuse_http_phase(boost::asio::ip::tcp::socket& sock, const std::string& ip,
                         const char* reason);
  void begin_shutdown();
  void check_drained();

  boost::asio::io_context& io_;
  const Config& cfg_;
  Metrics metrics_;
  Authenticator auth_;
  Policy policy_;
  ResumeTable resume_;
  RateLimits rates_;
  Context ctx_;
  std::shared_ptr<HttpCounts> http_ = std::make_shared<HttpCounts>();
  std::optional<boost::asio::ssl::context> tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer accept_timer_;  // accept back-off after EMFILE and the like
  std::uint32_t accept_backoff_ms_ = 0;
  bool accept_failing_ = false;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::map<std::string, std::uint32_t> per_ip_;
  std::uint32_t connections_ = 0;
  std::uint16_t bound_port_ = 0;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

}  // namespace mana::gateway
