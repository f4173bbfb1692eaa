// Server: TCP acceptor, HTTP/1.1 request handling and the WebSocket upgrade, session registry,
// authentication, resume lookups, connection caps and SIGTERM draining.
//
// Upgrade checks, in order, all before any 101: header size/count limits (431), path (404),
// Origin exact-match allowlist (403; a missing Origin only with origins.allow_missing),
// subprotocol `mana.ssh.v1` offered (400) - the response selects it; permessage-deflate stays
// off. Global and per-IP connection caps close the fresh WebSocket with 4010. /healthz and
// /metrics are answered on plain GETs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "mana/core/messages.hpp"

namespace mana::gateway {

class Session;
class Connection;

class Server {
 public:
  Server(boost::asio::io_context& io, const Config& cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting (throws on bind errors).
  void start();

  // ---- called by sessions and connections ----------------------------------------
  void on_hello(const std::shared_ptr<Session>& s, const core::Hello& hello);
  void on_resume(const std::shared_ptr<Session>& fresh, const core::Hello& hello);
  void remove_session(std::uint64_t id);
  void connection_closed(const std::string& ip);
  // Upgrade finished: create the Connection (and its handshake Session) or refuse with 4010.
  void on_upgraded(const std::shared_ptr<Connection>& c, const std::string& origin);

  [[nodiscard]] bool shutting_down() const noexcept { return shutting_down_; }
  [[nodiscard]] Context& context() noexcept { return ctx_; }
  [[nodiscard]] std::uint16_t bound_port() const noexcept { return bound_port_; }

  // Admission for a new WebSocket (global and per-IP caps). Returns "" or the refusal reason.
  [[nodiscard]] std::string admit(const std::string& ip) const;
  void count_connection(const std::string& ip);

 private:
  void do_accept();
  void begin_shutdown();
  void check_drained();

  boost::asio::io_context& io_;
  const Config& cfg_;
  Metrics metrics_;
  Authenticator auth_;
  Policy policy_;
  ResumeTable resume_;
  Context ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer drain_timer_;
  std::map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  std::map<std::string, std::uint32_t> per_ip_;
  std::uint32_t connections_ = 0;
  std::uint16_t bound_port_ = 0;
  bool shutting_down_ = false;
  std::chrono::steady_clock::time_point shutdown_deadline_;
};

}  // namespace mana::gateway
