// SPDX-License-Identifier: Apache-2.0
#include <algorithm>
#include "server.hpp"

#include <csignal>
#include <optional>
#include <type_traits>

#include <openssl/ssl.h>

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "connection.hpp"
#include "debug_view.hpp"
#include "log.hpp"
#include "session.hpp"

namespace mana::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;

namespace {

bool offers_subprotocol(std::string_view header) {
  // Sec-WebSocket-Protocol: a comma-separated list of tokens.
  std::size_t pos = 0;
  while (pos <= header.size()) {
    std::size_t end = header.find(',', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view tok = header.substr(pos, end - pos);
    while (!tok.empty() && (tok.front() == ' ' || tok.front() == '\t'))
      tok.remove_prefix(1);
    while (!tok.empty() && (tok.back() == ' ' || tok.back() == '\t'))
      tok.remove_suffix(1);
    if (tok == core::subprotocol) return true;
    pos = end + 1;
  }
  return false;
}

// One HTTP request on a fresh TCP connection (after the TLS handshake when TLS is on):
// answered, refused, or upgraded. `Stream` is PlainStream or TlsStream; everything else is
// shared. The handler holds an HTTP-phase slot (global and per-IP cap) until it is destroyed,
// which happens once the upgrade handed the stream to a Connection or the socket closed.
template <class Stream>
class HttpHandler : public std::enable_shared_from_this<HttpHandler<Stream>> {
 public:
  HttpHandler(Server& server, Stream&& stream, std::string ip, HttpSlot slot)
      : server_(server),
        ctx_(server.context()),
        stream_(std::move(stream)),
        buf_(ctx_.cfg.max_header_bytes + 1024),
        ip_(std::move(ip)),
        slot_(std::move(slot)) {}

  void start() {
    beast::get_lowest_layer(stream_).expires_after(
        std::chrono::milliseconds(ctx_.cfg.http_timeout_ms));
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      stream_.async_handshake(
          asio::ssl::stream_base::server,
          [self = this->shared_from_this()](const boost::system::error_code& ec) {
            if (ec) {
              self->ctx_.metrics.http_rejects["tls_handshake"]++;
              log_debug("tls_failed", {{"ip", self->ip_}, {"error", ec.message()}});
              self->close();
              return;
            }
            self->read_request();
          });
    } else {
      read_request();
    }
  }

 private:
  void read_request() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(ctx_.cfg.max_header_bytes));
    parser_->body_limit(0);
    http::async_read(stream_, buf_, *parser_,
                     [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                       std::size_t) { self->on_read(ec); });
  }

  void on_read(const boost::system::error_code& ec) {
    try {
      if (ec) {
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
          return refuse(http::status::request_header_fields_too_large, "header_limit");
        }
        if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
            ec == asio::error::operation_aborted) {
          close();
          return;
        }
        return refuse(http::status::bad_request, "bad_request");
      }
      ctx_.metrics.http_requests_total++;
      const auto& req = parser_->get();
      std::size_t fields = 0;
      for (auto it = req.begin(); it != req.end(); ++it)
        ++fields;
      if (fields > ctx_.cfg.max_header_count)
        return refuse(http::status::request_header_fields_too_large, "header_count");
      std::string_view target = req.target();
      const auto q = target.find('?');
      const std::string_view path = target.substr(0, q);

      if (!websocket::is_upgrade(req)) {
        if (req.method() == http::verb::get && ctx_.cfg.healthz && path == "/healthz")
          return respond(http::status::ok, "text/plain", "ok\n");
        if (req.method() == http::verb::get && ctx_.cfg.metrics && path == "/metrics")
          return respond(http::status::ok, "text/plain; version=0.0.4", ctx_.metrics.render());
        if (req.method() == http::verb::get && ctx_.cfg.debug_sessions &&
            path == "/debug/sessions" && is_loopback_ip(ip_))
          return respond(http::status::ok, "application/json",
                         ctx_.server.debug_sessions(query_param(target, "principal")));
        if (path == ctx_.cfg.path) return refuse(http::status::upgrade_required, "not_upgrade");
        return refuse(http::status::not_found, "not_found");
      }
      if (path != ctx_.cfg.path) return refuse(http::status::not_found, "not_found");
      // Origin: exact allowlist, never compared with Host. Two Origin headers: refused.
      const auto n_origin = req.count(http::field::origin);
      std::string origin;
      if (n_origin > 1) return refuse(http::status::forbidden, "origin");
      if (n_origin == 1) {
        origin = std::string(req[http::field::origin]);
        if (!origin_allowed(ctx_.cfg, origin)) {
          log_info("policy", {{"ip", ip_},
                              {"decision", "deny"},
                              {"reason", "origin"},
                              {"origin", origin.substr(0, 200)}});
          return refuse(http::status::forbidden, "origin");
        }
      } else if (!ctx_.cfg.allow_missing_origin) {
        log_info("policy", {{"ip", ip_}, {"decision", "deny"}, {"reason", "origin_missing"}});
        return refuse(http::status::forbidden, "origin_missing");
      }
      if (!offers_subprotocol(req[http::field::sec_websocket_protocol]))
        return refuse(http::status::bad_request, "subprotocol");
      if (server_.shutting_down()) return refuse(http::status::service_unavailable, "shutdown");
      upgrade(std::move(origin));
    } catch (const std::exception& ex) {
      log_event(LogLevel::error, "internal", {{"ip", ip_}, {"what", ex.what()}});
      close();
    }
  }

  void upgrade(std::string origin) {
    beast::get_lowest_layer(stream_).expires_never();
    ws_.emplace(std::move(stream_));
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::milliseconds(ctx_.cfg.http_timeout_ms);
    t.idle_timeout = websocket::stream_base::none();  // heartbeats are the core's job
    t.keep_alive_pings = false;
    ws_->set_option(t);
    websocket::permessage_deflate pmd;
    pmd.server_enable = false;
    pmd.client_enable = false;
    ws_->set_option(pmd);
    ws_->set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
      res.set(http::field::sec_websocket_protocol, core::subprotocol);
      res.set(http::field::server, "mana-gateway");
    }));
    origin_ = std::move(origin);
    ws_->async_accept(
        parser_->get(), [self = this->shared_from_this()](const boost::system::error_code& ec) {
          if (ec) {
            self->ctx_.metrics.http_rejects["upgrade_failed"]++;
            return;
          }
          self->slot_.release();  // the WebSocket counts against the connection caps from here
          auto conn = std::make_shared<Connection>(self->ctx_, WsStream(std::move(*self->ws_)),
                                                   self->ip_, self->origin_);
          self->server_.on_upgraded(conn, self->origin_);
        });
  }

  void respond(http::status st, const char* type, std::string body) {
    auto res = std::make_shared<http::response<http::string_body>>(st, 11);
    res->set(http::field::server, "mana-gateway");
    res->set(http::field::content_type, type);
    res->keep_alive(false);
    res->body() = std::move(body);
    res->prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](const boost::system::error_code&,
                                                             std::size_t) { self->close(); });
  }

  void refuse(http::status st, const char* reason) {
    ctx_.metrics.http_rejects[reason]++;
    log_debug("http_refused",
              {{"ip", ip_}, {"status", static_cast<unsigned>(st)}, {"reason", reason}});
    std::string body(http::obsolete_reason(st));
    body += "\n";
    respond(st, "text/plain", std::move(body));
  }

  void close() {
    boost::system::error_code ignored;
    auto& low = beast::get_lowest_layer(stream_);
    low.socket().shutdown(tcp::socket::shutdown_both, ignored);
    low.close();
  }

  Server& server_;
  Context& ctx_;
  Stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<websocket::stream<Stream>> ws_;
  std::string ip_;
  std::string origin_;
  HttpSlot slot_;
};

}  // namespace

HttpSlot::HttpSlot(std::shared_ptr<HttpCounts> counts, std::string ip)
    : counts_(std::move(counts)), ip_(std::move(ip)) {
  counts_->total++;
  counts_->per_ip[ip_]++;
}

HttpSlot::HttpSlot(HttpSlot&& o) noexcept : counts_(std::move(o.counts_)), ip_(std::move(o.ip_)) {}

HttpSlot::~HttpSlot() {
  release();
}

void HttpSlot::release() noexcept {
  if (!counts_) return;
  if (counts_->total > 0) counts_->total--;
  auto it = counts_->per_ip.find(ip_);
  if (it != counts_->per_ip.end() && --it->second == 0) counts_->per_ip.erase(it);
  counts_.reset();
}

Server::Server(asio::io_context& io, const Config& cfg)
    : io_(io),
      cfg_(cfg),
      auth_(cfg),
      policy_(cfg),
      rates_{RateLimiter(cfg.open_rate, cfg.open_burst), RateLimiter(cfg.ping_rate, cfg.ping_burst),
             RateLimiter(cfg.resume_fail_rate, cfg.resume_fail_burst)},
      ctx_{io, cfg_, metrics_, auth_, policy_, resume_, rates_, *this},
      acceptor_(io),
      signals_(io, SIGTERM, SIGINT),
      drain_timer_(io),
      accept_timer_(io) {
  metrics_.buffer_gauge = [this] {
    BufferGauge g;
    for (const auto& [id, s] : sessions_) {
      if (!s->live()) continue;
      const std::uint64_t b = s->buffered_bytes();
      g.total += b;
      g.max_session = std::max(g.max_session, b);
      g.sessions++;
      if (s->core().state() == core::SessionState::detached) g.detached++;
    }
    g.http_phase = http_->total;
    return g;
  };
  if (!cfg_.tls_cert_file.empty()) {
    // wss: TLS 1.2 or newer, OpenSSL's default cipher list; errors throw (startup fails).
    tls_.emplace(asio::ssl::context::tls_server);
    tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                      asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                      asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
    if (SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION) != 1)
      throw std::runtime_error("tls: cannot set the minimum protocol version");
    tls_->use_certificate_chain_file(cfg_.tls_cert_file);
    tls_->use_private_key_file(cfg_.tls_key_file, asio::ssl::context::pem);
  }
}

Server::~Server() = default;

void Server::start() {
  const tcp::endpoint ep(asio::ip::make_address(cfg_.listen_host), cfg_.listen_port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  bound_port_ = acceptor_.local_endpoint().port();
  ctx_.route_id =
      cfg_.route_id.empty() ? default_route_id(cfg_.listen_host, bound_port_) : cfg_.route_id;
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_info("signal", {{"signal", sig}});
    begin_shutdown();
  });
  log_always("listening", {{"address", cfg_.listen_host},
                           {"port", bound_port_},
                           {"route", ctx_.route_id},
                           {"origins", cfg_.origins.size()},
                           {"targets", cfg_.targets.size()},
                           {"jwt", auth_.jwt_enabled()},
                           {"jwks_keys", auth_.key_count()},
                           {"allow_none", cfg_.allow_none},
                           {"allow_missing_origin", cfg_.allow_missing_origin},
                           {"tls", tls_.has_value()}});
  do_accept();
}

void Server::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || shutting_down_) return;
      // Out of descriptors or memory: the pending connection stays in the backlog, so accepting
      // again at once fails at once (a busy loop). Back off 10 ms doubling to 1 s; log the first
      // failure of each episode and its end.
      accept_backoff_ms_ = std::clamp<std::uint32_t>(accept_backoff_ms_ * 2, 10, 1000);
      metrics_.accept_errors++;
      if (!accept_failing_)
        log_warn("accept_error", {{"error", ec.message()}, {"retry_ms", accept_backoff_ms_}});
      accept_failing_ = true;
      accept_timer_.expires_after(std::chrono::milliseconds(accept_backoff_ms_));
      accept_timer_.async_wait([this](const boost::system::error_code& e) {
        if (!e && !shutting_down_) do_accept();
      });
      return;
    }
    if (accept_failing_) log_info("accept_recovered", {{"errors", metrics_.accept_errors}});
    accept_failing_ = false;
    accept_backoff_ms_ = 0;
    on_accept(std::move(sock));
    do_accept();
  });
}

void Server::on_accept(tcp::socket sock) {
  try {
    boost::system::error_code e2;
    const auto remote = sock.remote_endpoint(e2);
    std::string ip = e2 ? std::string("?") : remote.address().to_string();
    log_debug("tcp_accept", {{"ip", ip}});
    // Small control messages (flow grants, pongs) must not wait for delayed ACKs (Nagle).
    sock.set_option(tcp::no_delay(true), e2);
    if (http_->total >= cfg_.max_http_connections)
      return refuse_http_phase(sock, ip, "max_http_connections");
    if (auto it = http_->per_ip.find(ip);
        it != http_->per_ip.end() && it->second >= cfg_.max_http_connections_per_ip)
      return refuse_http_phase(sock, ip, "max_http_connections_per_ip");
    HttpSlot slot(http_, ip);
    if (tls_) {
      std::make_shared<HttpHandler<TlsStream>>(
          *this, TlsStream(PlainStream(std::move(sock)), *tls_), std::move(ip), std::move(slot))
          ->start();
    } else {
      std::make_shared<HttpHandler<PlainStream>>(*this, PlainStream(std::move(sock)), std::move(ip),
                                                 std::move(slot))
          ->start();
    }
  } catch (const std::exception& ex) {
    log_event(LogLevel::error, "internal", {{"what", ex.what()}});
  }
}

void Server::refuse_http_phase(tcp::socket& sock, const std::string& ip, const char* reason) {
  metrics_.http_rejects[reason]++;
  metrics_.policy_rejections[reason]++;
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

std::string Server::admit(const std::string& ip) const {
  if (connections_ >= cfg_.max_connections) return "max_connections";
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && it->second >= cfg_.max_connections_per_ip)
    return "max_connections_per_ip";
  return {};
}

void Server::count_connection(const std::string& ip) {
  connections_++;
  per_ip_[ip]++;
  metrics_.connections_total++;
  metrics_.connections_active++;
}

void Server::connection_closed(const std::string& ip) {
  if (connections_ > 0) connections_--;
  if (metrics_.connections_active > 0) metrics_.connections_active--;
  auto it = per_ip_.find(ip);
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

void Server::on_upgraded(const std::shared_ptr<Connection>& c, const std::string& origin) {
  const std::string refusal = admit(c->client_ip());
  count_connection(c->client_ip());
  log_info("connect", {{"conn", c->id()},
                       {"ip", c->client_ip()},
                       {"origin", origin.empty() ? std::string("(none)") : origin.substr(0, 200)}});
  c->start();
  if (!refusal.empty()) {
    metrics_.policy_rejections[refusal]++;
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

void Server::on_hello(const std::shared_ptr<Session>& s, const core::Hello& hello) {
  const core::Timestamp now = mono_now();
  const AuthResult a = auth_.check(hello.auth, unix_now());
  if (!a.ok) {
    metrics_.policy_rejections["auth"]++;
    log_info("auth",
             {{"session", s->id()}, {"ip", s->client_ip()}, {"result", "fail"}, {"reason", a.why}});
    s->core().reject(core::Errc::auth_failed, "authentication failed", now);
    return;
  }
  if (shutting_down_) {
    s->core().reject(core::Errc::going_away, "server shutdown", now);
    return;
  }
  std::uint32_t mine = 0;
  for (const auto& [id, other] : sessions_)
    if (other != s && other->live() && other->authenticated() && other->principal() == a.principal)
      ++mine;
  if (mine >= cfg_.max_sessions_per_principal) {
    metrics_.policy_rejections["max_sessions_per_principal"]++;
    log_warn("policy", {{"session", s->id()},
                        {"principal", a.principal},
                        {"decision", "close"},
                        {"reason", "max_sessions_per_principal"},
                        {"code", 4010}});
    s->core().reject(core::Errc::server_overload, "too many sessions", now);
    return;
  }
  s->set_principal(a.principal, a.targets);
  std::string token = cfg_.resume ? ResumeTable::new_token() : std::string();
  if (auto r = s->core().accept(core::AcceptParams{token}, now); !r) {
    log_warn("accept_failed", {{"session", s->id()}, {"detail", r.error().detail}});
    return;
  }
  const bool resumable = !s->core().resume_token().empty();
  if (resumable) resume_.add(s->core().resume_token(), s);
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

void Server::on_resume(const std::shared_ptr<Session>& fresh, const core::Hello& hello) {
  const core::Timestamp now = mono_now();
  const auto steady = std::chrono::steady_clock::now();
  // Per-IP budget of failed resume attempts: once spent, further attempts from that address
  // are refused with 4004 before any token lookup (token guessing stays slow).
  if (!rates_.resume_failures.has_token(fresh->client_ip(), steady)) {
    metrics_.policy_rejections["rate_resume_fail"]++;
    metrics_.resumes["rate_limited"]++;
    log_warn("policy", {{"session", fresh->id()},
                        {"ip", fresh->client_ip()},
                        {"decision", "close"},
                        {"reason", "rate_limited"},
                        {"limit", "resume_failures"},
                        {"code", 4004}});
    fresh->core().reject(core::Errc::policy_denied, "rate limited", now);
    return;
  }
  const AuthResult a = auth_.check(hello.auth, unix_now());
  if (!a.ok) {
    (void)rates_.resume_failures.take(fresh->client_ip(), steady);
    metrics_.policy_rejections["auth"]++;
    log_info("auth", {{"session", fresh->id()},
                      {"ip", fresh->client_ip()},
                      {"result", "fail"},
                      {"reason", a.why},
                      {"resume", true}});
    fresh->core().reject(core::Errc::auth_failed, "authentication failed", now);
    return;
  }
  auto refuse = [&](core::Errc code, const char* text, const char* outcome) {
    (void)rates_.resume_failures.take(fresh->client_ip(), steady);
    metrics_.resumes[outcome]++;
    log_info("resume", {{"session", fresh->id()},
                        {"ip", fresh->client_ip()},
                        {"principal", a.principal},
                        {"result", outcome}});
    fresh->core().reject(code, text, now);
  };
  const std::string& token = hello.resume->token;
  std::shared_ptr<Session> existing = resume_.find(token);
  // Unknown, expired, spent and foreign tokens take the same path and get the same answer.
  const bool token_ok = existing && existing->core().matches_token(token);
  const bool ok = token_ok && existing != fresh && existing->live() &&
                  existing->principal() == a.principal && existing->origin() == fresh->origin() &&
                  !shutting_down_;
  if (!ok) return refuse(core::Errc::resume_rejected, "resume rejected", "rejected");
  std::string next = ResumeTable::new_token();
  if (auto r = existing->core().resume(hello, next, now); !r) {
    if (r.error().code == core::Errc::resume_out_of_range)
      return refuse(core::Errc::resume_out_of_range, "resume offset out of range", "out_of_range");
    return refuse(core::Errc::resume_rejected, "resume rejected", "rejected");
  }
  resume_.replace(existing, next, existing->core().previous_token());
  auto old_conn = existing->connection();
  auto conn = fresh->connection();
  fresh->discard();
  if (old_conn && old_conn != conn) old_conn->supersede();
  if (conn) existing->attach(conn);
  metrics_.resumes["accepted"]++;
  log_info("resume", {{"session", existing->id()},
                      {"ip", existing->client_ip()},
                      {"principal", a.principal},
                      {"result", "accepted"},
                      {"superseded", old_conn != nullptr},
                      {"resumes", existing->core().resume_count()}});
  asio::post(io_, [existing] { existing->pump(); });
}

void Server::remove_session(std::uint64_t id) {
  asio::post(io_, [this, id] {
    sessions_.erase(id);
    if (shutting_down_) check_drained();
  });
}

void Server::begin_shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  boost::system::error_code ignored;
  acceptor_.close(ignored);
  accept_timer_.cancel();
  shutdown_deadline_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.shutdown_grace_ms);
  std::vector<std::shared_ptr<Session>> all;
  for (const auto& [id, s] : sessions_)
    all.push_back(s);
  for (auto& s : all)
    s->shutdown();
  check_drained();
}

void Server::check_drained() {
  if (connections_ == 0 && sessions_.empty()) {
    log_info("drained", {});
    drain_timer_.cancel();
    signals_.cancel();
    return;
  }
  if (std::chrono::steady_clock::now() >= shutdown_deadline_) {
    log_warn("drain_timeout", {{"connections", connections_}, {"sessions", sessions_.size()}});
    io_.stop();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(50));
  drain_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) check_drained();
  });
}

}  // namespace mana::gateway
