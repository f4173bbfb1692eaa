#include "server.hpp"

#include <csignal>
#include <optional>

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "connection.hpp"
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

// One HTTP request on a fresh TCP connection: answered, refused, or upgraded.
class HttpHandler : public std::enable_shared_from_this<HttpHandler> {
 public:
  HttpHandler(Server& server, tcp::socket&& sock, std::string ip)
      : server_(server),
        ctx_(server.context()),
        stream_(std::move(sock)),
        buf_(ctx_.cfg.max_header_bytes + 1024),
        ip_(std::move(ip)) {}

  void start() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(ctx_.cfg.max_header_bytes));
    parser_->body_limit(0);
    stream_.expires_after(std::chrono::milliseconds(ctx_.cfg.handshake_timeout_ms));
    http::async_read(stream_, buf_, *parser_,
                     [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

 private:
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
    stream_.expires_never();
    ws_.emplace(std::move(stream_));
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::milliseconds(ctx_.cfg.handshake_timeout_ms);
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
    ws_->async_accept(parser_->get(),
                      [self = shared_from_this()](const boost::system::error_code& ec) {
                        if (ec) {
                          self->ctx_.metrics.http_rejects["upgrade_failed"]++;
                          return;
                        }
                        auto conn = std::make_shared<Connection>(self->ctx_, std::move(*self->ws_),
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
    stream_.expires_after(std::chrono::seconds(5));
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](const boost::system::error_code&,
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
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  Server& server_;
  Context& ctx_;
  beast::tcp_stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<Connection::Ws> ws_;
  std::string ip_;
  std::string origin_;
};

}  // namespace

Server::Server(asio::io_context& io, const Config& cfg)
    : io_(io),
      cfg_(cfg),
      auth_(cfg),
      policy_(cfg),
      ctx_{io, cfg_, metrics_, auth_, policy_, resume_, *this},
      acceptor_(io),
      signals_(io, SIGTERM, SIGINT),
      drain_timer_(io) {
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
    return g;
  };
}

Server::~Server() = default;

void Server::start() {
  const tcp::endpoint ep(asio::ip::make_address(cfg_.listen_host), cfg_.listen_port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  bound_port_ = acceptor_.local_endpoint().port();
  signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_info("signal", {{"signal", sig}});
    begin_shutdown();
  });
  log_info("listening", {{"address", cfg_.listen_host},
                         {"port", bound_port_},
                         {"origins", cfg_.origins.size()},
                         {"targets", cfg_.targets.size()},
                         {"jwt", auth_.jwt_enabled()},
                         {"allow_none", cfg_.allow_none},
                         {"allow_missing_origin", cfg_.allow_missing_origin}});
  do_accept();
}

void Server::do_accept() {
  acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket sock) {
    if (ec) {
      if (ec == asio::error::operation_aborted || shutting_down_) return;
      log_warn("accept_error", {{"error", ec.message()}});
      do_accept();
      return;
    }
    try {
      boost::system::error_code e2;
      const auto remote = sock.remote_endpoint(e2);
      std::string ip = e2 ? std::string("?") : remote.address().to_string();
      log_debug("tcp_accept", {{"ip", ip}});
      std::make_shared<HttpHandler>(*this, std::move(sock), std::move(ip))->start();
    } catch (const std::exception& ex) {
      log_event(LogLevel::error, "internal", {{"what", ex.what()}});
    }
    do_accept();
  });
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
  const AuthResult a = auth_.check(hello.auth, unix_now());
  if (!a.ok) {
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
  resume_.add(next, existing);
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
