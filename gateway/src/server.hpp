// SPDX-License-Identifier: Apache-2.0
// Server: one gateway process, put together. It owns the shared state (Config reference, Metrics,
// Authenticator, Policy, ResumeTable, RateLimits, the Context that hands them to everything) and
// the three parts, in Beast's chat-multi shape:
//   Listener         (listener.hpp)          accept, TLS, HTTP-phase caps, signals, drain;
//   HttpHandler      (http_handler.hpp)      the HTTP request: upgrade checks, /healthz, /metrics;
//   SessionRegistry  (session_registry.hpp)  sessions, admission caps, hello, resume.
// Sessions and connections call back into the SessionRegistry only. Per-IP token buckets ([rate])
// limit failed resume attempts in the registry and channel opens and pings in Session (4004).
//
// Reload (SIGHUP, with a loader from main): the new configuration is read and everything that
// can fail is built first (the Authenticator with the secret and the JWKS, the TLS context from
// the certificate and key files, the log level); only then is anything swapped in, so an invalid
// file changes nothing (logged as `reload_failed`, counted as
// mana_config_reloads_total{outcome="error"}). Connections and sessions are never dropped: the
// new settings apply to what starts after the reload (a session keeps its [session] settings;
// the caps, Origin and target allowlists, keys and certificate apply to the next check or
// connection). Restart-only, kept as they are and named in the `reload` line's `ignored` list:
// server.listen, TLS on/off, [rate] (its token buckets hold per-IP state), session.max_frame (a
// resumed session keeps the maxFrame it announced).
#pragma once

#include <cstdint>
#include <functional>

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

  // What SIGHUP reads: the configuration as at startup (file, command line, validation); throws
  // with the reason. Without one, SIGHUP only logs that there is nothing to reload.
  void set_config_loader(std::function<Config()> loader) { loader_ = std::move(loader); }
  // Re-reads configuration, certificate and keys; on any error keeps everything as it was.
  void reload();

  [[nodiscard]] Context& context() noexcept { return ctx_; }
  [[nodiscard]] SessionRegistry& registry() noexcept { return registry_; }
  [[nodiscard]] std::uint16_t bound_port() const noexcept { return listener_.bound_port(); }

 private:
  Config cfg_;  // the live configuration (Context::cfg refers to it); reload() replaces it
  Metrics metrics_;
  Authenticator auth_;
  Policy policy_;
  ResumeTable resume_;
  RateLimits rates_;
  Context ctx_;
  SessionRegistry registry_;
  Listener listener_;
  std::function<Config()> loader_;
};

}  // namespace mana::gateway
