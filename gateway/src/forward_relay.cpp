// SPDX-License-Identifier: Apache-2.0
#include "forward_relay.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/websocket.hpp>

#include "connection.hpp"
#include "log.hpp"
#include "session_registry.hpp"

namespace mana::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;

namespace {

// A Unix stream socket driven through Asio's TCP socket type: only stream reads and writes,
// shutdown and close are used on it (no endpoint queries, no TCP options).
tcp::socket adopt(asio::io_context& io, Fd fd) {
  tcp::socket s(io);
  s.assign(tcp::v4(), fd.release());
  return s;
}

void set_timeouts(PlainWs& ws, std::chrono::milliseconds handshake) {
  websocket::stream_base::timeout t{};
  t.handshake_timeout = handshake;
  t.idle_timeout = websocket::stream_base::none();  // heartbeats are the core's job
  t.keep_alive_pings = false;
  ws.set_option(t);
}

websocket::close_reason passed_on(const websocket::close_reason& r) {
  // 1005 (no status) and 1006 (abnormal) cannot be sent in a close frame.
  if (r.code == websocket::close_code::none || r.code == 1006) return websocket::close_reason{};
  websocket::close_reason out(r.code);
  out.reason = r.reason.substr(0, 120);
  return out;
}

}  // namespace

ForwardRelay::ForwardRelay(Context& ctx, WsStream client, Fd upstream, std::string first, bool text,
                           std::string ip)
    : ctx_(ctx),
      client_(std::move(client)),
      upstream_(PlainStream(adopt(ctx.io, std::move(upstream)))),
      first_(std::move(first)),
      first_text_(text),
      ip_(std::move(ip)) {
  ctx_.registry.count_connection(ip_);  // invariant 2
}

// Every path ends in finish(); a relay destroyed without it (its handlers dropped at io_context
// teardown, after the registry is gone) must not touch the registry: the sockets close themselves.
ForwardRelay::~ForwardRelay() = default;

void ForwardRelay::start() {
  set_timeouts(upstream_, upstream_timeout);
  upstream_.read_message_max(2 * static_cast<std::uint64_t>(ctx_.cfg.max_frame));
  upstream_.auto_fragment(false);
  upstream_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
    req.set(beast::http::field::sec_websocket_protocol, core::subprotocol);
  }));
  upstream_.async_handshake(
      "mana-handover", "/forwarded",
      [self = shared_from_this()](const boost::system::error_code& ec) {
        if (ec) {
          log_info("forward",
                   {{"ip", self->ip_}, {"result", "handshake_failed"}, {"error", ec.message()}});
          self->ctx_.metrics.forwarded_resumes["failed"]++;
          return self->finish();
        }
        self->upstream_.text(self->first_text_);
        self->upstream_.async_write(asio::buffer(self->first_),
                                    [self](const boost::system::error_code& e, std::size_t) {
                                      self->first_.clear();
                                      self->first_.shrink_to_fit();
                                      if (e) return self->finish();
                                      self->read_client();
                                      self->read_upstream();
                                    });
      });
}

void ForwardRelay::read_client() {
  if (closing_ || finished_) return;
  client_.visit([this](auto& ws) {
    ws.async_read(
        cbuf_, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          if (self->closing_ || self->finished_) return;
          if (ec) {
            if (ec == websocket::error::closed)
              return self->close_upstream(self->client_.visit(
                  [](auto& w) -> websocket::close_reason { return w.reason(); }));
            return self->finish();  // lost: the old process detaches the session
          }
          self->ctx_.metrics.frames_in++;
          self->ctx_.metrics.ws_bytes_in += n;
          self->upstream_.text(self->client_.visit([](auto& w) { return w.got_text(); }));
          self->upstream_.async_write(self->cbuf_.data(),
                                      [self](const boost::system::error_code& e, std::size_t) {
                                        self->cbuf_.consume(self->cbuf_.size());
                                        if (e) return self->finish();
                                        self->read_client();
                                      });
        });
  });
}

void ForwardRelay::read_upstream() {
  if (closing_ || finished_) return;
  upstream_.async_read(ubuf_, [self = shared_from_this()](const boost::system::error_code& ec,
                                                          std::size_t n) {
    if (self->closing_ || self->finished_) return;
    if (ec) {
      if (ec == websocket::error::closed) return self->close_client(self->upstream_.reason());
      return self->finish();  // the old process went away: the client resumes again
    }
    const bool text = self->upstream_.got_text();
    self->client_.visit([&](auto& ws) {
      ws.text(text);
      ws.async_write(self->ubuf_.data(), [self](const boost::system::error_code& e, std::size_t m) {
        self->ubuf_.consume(self->ubuf_.size());
        if (e) return self->finish();
        self->ctx_.metrics.frames_out++;
        self->ctx_.metrics.ws_bytes_out += m;
        self->read_upstream();
      });
    });
    (void)n;
  });
}

void ForwardRelay::close_upstream(const websocket::close_reason& r) {
  closing_ = true;
  // Invariant 1: upstream writes come from read_client only, which is past its write.
  upstream_.async_close(passed_on(r), [self = shared_from_this()](
                                          const boost::system::error_code&) { self->finish(); });
}

void ForwardRelay::close_client(const websocket::close_reason& r) {
  closing_ = true;
  client_.visit([&](auto& ws) {
    ws.async_close(passed_on(r), [self = shared_from_this()](const boost::system::error_code&) {
      self->finish();
    });
  });
}

void ForwardRelay::finish() {
  if (finished_) return;
  finished_ = true;
  boost::system::error_code ignored;
  client_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  client_.socket().close(ignored);
  auto& up = beast::get_lowest_layer(upstream_).socket();
  up.shutdown(tcp::socket::shutdown_both, ignored);
  up.close(ignored);
  ctx_.registry.connection_closed(ip_);
}

void serve_forwarded(Context& ctx, Fd fd, std::string ip, std::string origin) {
  ctx.metrics.forwarded_in++;
  auto ws = std::make_shared<PlainWs>(PlainStream(adopt(ctx.io, std::move(fd))));
  set_timeouts(*ws, ForwardRelay::upstream_timeout);
  websocket::permessage_deflate pmd;
  pmd.server_enable = false;
  pmd.client_enable = false;
  ws->set_option(pmd);
  ws->set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
    res.set(beast::http::field::sec_websocket_protocol, core::subprotocol);
    res.set(beast::http::field::server, "mana-gateway");
  }));
  ws->async_accept([&ctx, ws, ip = std::move(ip),
                    origin = std::move(origin)](const boost::system::error_code& ec) mutable {
    if (ec) {
      log_info("forwarded", {{"ip", ip}, {"result", "accept_failed"}, {"error", ec.message()}});
      return;
    }
    if (ctx.registry.stopping()) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(*ws).socket().close(ignored);
      return;
    }
    log_info("forwarded", {{"ip", ip}, {"result", "accepted"}});
    auto conn = std::make_shared<Connection>(ctx, WsStream(std::move(*ws)), ip, origin);
    ctx.registry.on_upgraded(conn, origin);
  });
}

}  // namespace mana::gateway
