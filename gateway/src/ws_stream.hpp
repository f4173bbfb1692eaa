// WsStream: one accepted WebSocket over plain TCP (ws://) or TLS (wss://). Connection keeps one
// code path for both: every operation visits the variant with a generic lambda, so the same
// completion handlers serve both stream types.
#pragma once

#include <utility>
#include <variant>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace mana::gateway {

using PlainStream = boost::beast::tcp_stream;
using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;
using PlainWs = boost::beast::websocket::stream<PlainStream>;
using TlsWs = boost::beast::websocket::stream<TlsStream>;

class WsStream {
 public:
  explicit WsStream(PlainWs&& ws) : v_(std::in_place_type<PlainWs>, std::move(ws)) {}
  explicit WsStream(TlsWs&& ws) : v_(std::in_place_type<TlsWs>, std::move(ws)) {}

  // Calls f(ws) with the concrete websocket::stream.
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit(std::forward<F>(f), v_);
  }
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit(std::forward<F>(f), v_);
  }

  boost::asio::ip::tcp::socket& socket() {
    return std::visit(
        [](auto& ws) -> boost::asio::ip::tcp::socket& {
          return boost::beast::get_lowest_layer(ws).socket();
        },
        v_);
  }
  [[nodiscard]] bool tls() const noexcept { return std::holds_alternative<TlsWs>(v_); }

 private:
  std::variant<PlainWs, TlsWs> v_;
};

}  // namespace mana::gateway
