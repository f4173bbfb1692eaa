// SPDX-License-Identifier: Apache-2.0
#include "http_handler.hpp"

#include <algorithm>
#include <optional>
#include <type_traits>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "client_address.hpp"
#include "connection.hpp"
#include "debug_view.hpp"
#include "log.hpp"
#include "session_registry.hpp"

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
  HttpHandler(Context& ctx, Stream&& stream, ClientInfo client, HttpSlot slot, std::string leftover)
      : ctx_(ctx),
        stream_(std::move(stream)),
        buf_(ctx_.cfg.max_header_bytes + 1024),
        client_(std::move(client)),
        ip_(client_.key),
        slot_(std::move(slot)),
        leftover_(std::move(leftover)) {}

  void start(std::chrono::steady_clock::time_point deadline) {
    beast::get_lowest_layer(stream_).expires_at(deadline);
    if constexpr (std::is_same_v<Stream, TlsStream>) {
      auto on_handshake = [self = this->shared_from_this()](const boost::system::error_code& ec) {
        if (ec) {
          self->ctx_.metrics.http_rejects["tls_handshake"]++;
          log_debug("tls_failed", {{"ip", self->ip_}, {"error", ec.message()}});
          self->close();
          return;
        }
        self->leftover_.clear();
        self->read_request();
      };
      if (leftover_.empty()) {
        stream_.async_handshake(asio::ssl::stream_base::server, std::move(on_handshake));
      } else {
        // The ClientHello's first bytes came with the PROXY header.
        stream_.async_handshake(
            asio::ssl::stream_base::server, asio::buffer(leftover_),
            // (ec, bytes used); `auto&&...` also satisfies Beast's check for (ec).
            [on_handshake = std::move(on_handshake)](const boost::system::error_code& ec,
                                                     auto&&...) { on_handshake(ec); });
      }
    } else {
      // The request's first bytes came with the PROXY header (at most 512: buf_ holds them).
      const std::size_t n = std::min(leftover_.size(), buf_.max_size());
      buf_.commit(asio::buffer_copy(buf_.prepare(n), asio::buffer(leftover_.data(), n)));
      leftover_.clear();
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
                                                       std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t header_bytes) {
    try {
      // Beast's header_limit stops only a header that is still incomplete at the limit: one that
      // arrives whole in one read (the buffer holds the limit + 1 KiB) passed it. Counted here
      // too (found by fuzz_gateway_upgrade: a 2 175-byte header answered 101 with a 2 048 limit).
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow ||
          (!ec && header_bytes > ctx_.cfg.max_header_bytes)) {
        return refuse(http::status::request_header_fields_too_large, "header_limit");
      }
      if (ec) {
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
      if (!forwarded_client(req)) return;
      std::string_view target = req.target();
      const auto q = target.find('?');
      const std::string_view path = target.substr(0, q);

      if (!websocket::is_upgrade(req)) {
        if (req.method() == http::verb::get && ctx_.cfg.healthz && path == "/healthz") {
          if (ctx_.registry.stopping())
            return respond(http::status::service_unavailable, "text/plain", "draining\n");
          if (ctx_.registry.draining())
            return respond(static_cast<http::status>(ctx_.cfg.drain_health_status), "text/plain",
                           "draining\n");
          return respond(http::status::ok, "text/plain", "ok\n");
        }
        if (req.method() == http::verb::get && ctx_.cfg.metrics && path == "/metrics")
          return respond(http::status::ok, "text/plain; version=0.0.4", ctx_.metrics.render());
        if (req.method() == http::verb::get && ctx_.cfg.debug_sessions &&
            path == "/debug/sessions" && client_.address.is_loopback())
          return respond(http::status::ok, "application/json",
                         ctx_.registry.debug_sessions(query_param(target, "principal")));
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
      if (ctx_.registry.stopping()) return refuse(http::status::service_unavailable, "shutdown");
      upgrade(std::move(origin));
    } catch (const std::exception& ex) {
      log_event(LogLevel::error, "internal", {{"ip", ip_}, {"what", ex.what()}});
      close();
    }
  }

  // Behind a trusted proxy: the client its forwarding header names (client_address.hpp), the
  // HTTP-phase slot re-keyed to it. False when the request was refused (over the per-IP cap).
  bool forwarded_client(const http::request<http::empty_body>& req) {
    const Config& cfg = ctx_.cfg;
    if (!cfg.trusted_proxies.contains(client_.address)) return true;
    const bool rfc7239 = cfg.forwarded_header == ForwardedHeader::forwarded;
    std::vector<std::string_view> values;
    const std::string_view name = rfc7239 ? "Forwarded" : "X-Forwarded-For";
    const auto range = req.equal_range(name);
    for (auto it = range.first; it != range.second; ++it)
      values.push_back(it->value());
    const ClientAddress found =
        client_from_forwarded(client_.address, values, cfg.forwarded_header, cfg.trusted_proxies);
    if (found.address != client_.address) {
      client_.address = found.address;
      client_.key = limit_key(found.address, cfg.ipv6_prefix);
      client_.via = forwarded_header_name(cfg.forwarded_header);
      ip_ = client_.key;
    }
    if (client_.via != nullptr)
      log_debug("client_address", {{"ip", ip_},
                                   {"address", client_.address.to_string()},
                                   {"peer", client_.peer.to_string()},
                                   {"via", client_.via},
                                   {"outcome", forwarded_outcome_name(found.outcome)}});
    if (!slot_.assign_ip(ip_, cfg.max_http_connections_per_ip)) {
      ctx_.metrics.policy_rejections["max_http_connections_per_ip"]++;
      log_warn("policy", {{"ip", ip_},
                          {"decision", "deny"},
                          {"reason", "max_http_connections_per_ip"},
                          {"phase", "http"}});
      refuse(http::status::service_unavailable, "max_http_connections_per_ip");
      return false;
    }
    return true;
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
          self->ctx_.registry.on_upgraded(conn, self->origin_);
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

  Context& ctx_;
  Stream stream_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  std::optional<websocket::stream<Stream>> ws_;
  ClientInfo client_;
  std::string ip_;  // client_.key
  std::string origin_;
  HttpSlot slot_;
  std::string leftover_;
};

}  // namespace

HttpSlot::HttpSlot(std::shared_ptr<HttpCounts> counts, std::string ip)
    : counts_(std::move(counts)), ip_(std::move(ip)) {
  counts_->total++;
  if (!ip_.empty()) counts_->per_ip[ip_]++;
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

bool HttpSlot::assign_ip(const std::string& ip, std::uint32_t cap) {
  if (!counts_ || ip == ip_) return true;
  std::uint32_t& n = counts_->per_ip[ip];
  if (n >= cap) {
    if (n == 0) counts_->per_ip.erase(ip);
    return false;
  }
  n++;
  if (auto it = counts_->per_ip.find(ip_); it != counts_->per_ip.end() && --it->second == 0)
    counts_->per_ip.erase(it);
  ip_ = ip;
  return true;
}

void serve_http(Context& ctx, tcp::socket sock, ClientInfo client, HttpSlot slot,
                asio::ssl::context* tls, std::string leftover,
                std::chrono::steady_clock::time_point deadline) {
  if (tls) {
    std::make_shared<HttpHandler<TlsStream>>(ctx, TlsStream(PlainStream(std::move(sock)), *tls),
                                             std::move(client), std::move(slot),
                                             std::move(leftover))
        ->start(deadline);
  } else {
    std::make_shared<HttpHandler<PlainStream>>(ctx, PlainStream(std::move(sock)), std::move(client),
                                               std::move(slot), std::move(leftover))
        ->start(deadline);
  }
}

}  // namespace mana::gateway
