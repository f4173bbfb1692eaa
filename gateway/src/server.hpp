// SPDX-License-Identifier: Apache-2.0
// Server: one gateway process, put together. It owns the shared state (Config reference, Metrics,
// Authenticator, Policy, ResumeTable, RateLimits, the Context that hands them to everything) and
// the three parts, in Beast's chat-multi shape:
//   Listener         (listener.hpp)          accept, TLS, HTTP-phase caps, signals, drain;
//   HttpHandler      (http_handler.hpp)      the HTTP request: upgrade checks, /healthz, /metrics;
//   SessionRegistry  (session_registry.hpp)  sessions, admission caps, hello, resume.
// Sessions and connections call back into the SessionRegistry only. Per-IP token buckets ([rate])
// limit failed resume attempts in the registry and channel opens and pings in Session (4004).
#pragma once

#include <cstdint>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "context.hpp"
#include "listener.hpp"
#include "session_registry.hpp"

namespace mana::gateway {

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
  void serve(boost::asio::ip::tcp::socket sock) { listener_.on_accept(std::move(sock)); }

  [[nodiscard]] Context& context() noexcept { return ctx_; }
  [[nodiscard]] SessionRegistry& registry() noexcept { return registry_; }
  [[nodiscard]] std::uint16_t bound_port() const noexcept { return listener_.bound_port(); }

 private:
  const Config& cfg_;
  Metrics metrics_;
  Authenticator auth_;
  Policy policy_;
  ResumeTable resume_;
  RateLimits rates_;
  Context ctx_;
  SessionRegistry registry_;
  Listener listener_;
};

}  // namespace mana::gateway
