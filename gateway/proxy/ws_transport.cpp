// SPDX-License-Identifier: Apache-2.0
// mana-proxy's link (ws_transport.hpp): WsTransport over beast::tcp_stream or an ssl_stream over
// it, and the factory that picks one for the URL.
#include "ws_transport.hpp"

#include <chrono>
#include <string>
#include <type_traits>
#include <utility>

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace mana::proxy {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = net::ssl;
using net::ip::tcp;

namespace {

constexpr std::size_t max_message = 16 * 1024 * 1024;  // largest WebSocket message read

// One connection attempt over Stream (beast::tcp_stream, or ssl_stream over it): resolve,
// connect, TLS, then the WebSocket of host::ClientLink, which reports to the sink.
template <class Stream>
class WsTransport final : public Transport,
                          public std::enable_shared_from_this<WsTransport<Stream>> {
 public:
  // `target`: the request target (the URL's path and query; a resume's carries route=<id>).
  WsTransport(net::io_context& io, ssl::context* tls, const Options& opt, host::LinkSink& sink,
              std::uint64_t gen, std::string target)
      : resolver_(io),
        link_(make_link(io, tls, sink, gen)),
        opt_(opt),
        target_(std::move(target)) {}

  void start() override {
    auto self = this->shared_from_this();
    resolver_.async_resolve(opt_.url.host, opt_.url.port,
                            [self](const beast::error_code& ec, tcp::resolver::results_type r) {
                              self->on_resolve(ec, std::move(r));
                            });
  }

  void send(core::OutMessage&& m) override { link_->send(std::move(m)); }

  void abort() override {
    resolver_.cancel();
    link_->abort();
  }

  [[nodiscard]] std::size_t queued_bytes() const override { return link_->queued(); }

 private:
  static constexpr bool tls_v = !std::is_same_v<Stream, beast::tcp_stream>;
  using Link = host::ClientLink<Stream>;

  static std::shared_ptr<Link> make_link(net::io_context& io, ssl::context* tls,
                                         host::LinkSink& sink, std::uint64_t gen) {
    if constexpr (tls_v) {
      return std::make_shared<Link>(sink, gen, io, *tls);
    } else {
      (void)tls;
      return std::make_shared<Link>(sink, gen, io);
    }
  }

  void on_resolve(const beast::error_code& ec, const tcp::resolver::results_type& r) {
    if (link_->done()) return;
    if (ec) return link_->fail("cannot resolve " + opt_.url.host + ": " + ec.message());
    auto& lowest = beast::get_lowest_layer(link_->ws());
    lowest.expires_after(std::chrono::milliseconds(opt_.connect_timeout_ms));
    auto self = this->shared_from_this();
    lowest.async_connect(
        r, [self](const beast::error_code& e, const tcp::endpoint&) { self->on_connect(e); });
  }

  void on_connect(const beast::error_code& ec) {
    if (link_->done()) return;
    if (ec) return link_->fail("cannot connect to " + opt_.url.host_header() + ": " + ec.message());
    link_->tune_socket();
    if constexpr (tls_v) {
      auto& tls = link_->ws().next_layer();
      if (SSL_set_tlsext_host_name(tls.native_handle(), opt_.url.host.c_str()) != 1)
        return link_->fail("cannot set TLS server name");
      tls.set_verify_mode(ssl::verify_peer);
      tls.set_verify_callback(ssl::host_name_verification(opt_.url.host));
      auto self = this->shared_from_this();
      tls.async_handshake(ssl::stream_base::client,
                          [self](const beast::error_code& e) { self->on_tls(e); });
    } else {
      ws_handshake();
    }
  }

  void on_tls(const beast::error_code& ec) {
    if (link_->done()) return;
    if (ec)
      return link_->fail("TLS handshake with " + opt_.url.host_header() +
                         " failed: " + ec.message());
    ws_handshake();
  }

  void ws_handshake() {
    host::LinkOptions o;
    o.host = opt_.url.host_header();
    o.path = target_;
    o.origin = opt_.origin;
    o.user_agent = "mana-proxy/" MANA_PROXY_VERSION;
    o.handshake_timeout = std::chrono::milliseconds(opt_.connect_timeout_ms);
    o.write_buffer_bytes = 64 * 1024;
    o.max_message = max_message;
    link_->handshake(o);
  }

  tcp::resolver resolver_;
  std::shared_ptr<Link> link_;
  const Options& opt_;
  std::string target_;
};

}  // namespace

std::shared_ptr<Transport> make_transport(net::io_context& io, ssl::context* tls,
                                          const Options& opt, host::LinkSink& sink,
                                          std::uint64_t gen, std::string target) {
  if (opt.url.tls) {
    return std::make_shared<WsTransport<beast::ssl_stream<beast::tcp_stream>>>(
        io, tls, opt, sink, gen, std::move(target));
  }
  return std::make_shared<WsTransport<beast::tcp_stream>>(io, nullptr, opt, sink, gen,
                                                          std::move(target));
}

}  // namespace mana::proxy
