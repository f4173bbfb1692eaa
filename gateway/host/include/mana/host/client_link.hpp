// SPDX-License-Identifier: Apache-2.0
// ClientLink: one WebSocket of a client session (core::ClientSession) to a mana.ssh.v1 server,
// over any Beast stream: beast::tcp_stream or an ssl_stream over it (mana-proxy), a plain
// tcp::socket (mana-bench). The owner connects the stream below (resolve, bind, TLS: through
// ws().next_layer()) and then calls handshake(); the link upgrades with subprotocol mana.ssh.v1,
// reads whole messages and writes the session's OutMessages in order. A resume makes a new link:
// every report carries the link's generation, so the owner ignores the older ones.
//
// Invariants
//   L1  At most one WebSocket write is in flight. queued() counts the bytes of the messages
//       queued and in flight (the owner's `transport` pause reason reads it).
//   L2  on_link_closed is reported at most once, and nothing after it; abort() reports nothing.
//       Every report comes from an Asio handler, never from inside a call of the owner.
//   L3  A close message is the last one written: send() drops what follows it.
//   L4  Messages are written as `data` only: the session must not use shared payloads
//       (SessionCore::set_shared_payloads, off by default).
#pragma once

#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "mana/core/types.hpp"
#include "mana/core/wire_profile.hpp"

namespace mana::host {

inline constexpr const char* mana_subprotocol = "mana.ssh.v1";

// What a ClientLink reports to its owner. Every call carries the link's generation.
class LinkSink {
 public:
  virtual ~LinkSink() = default;
  // The upgrade completed: the owner calls transport_open() on its session.
  virtual void on_link_open(std::uint64_t gen) = 0;
  // One whole message; `data` is valid during the call only.
  virtual void on_link_message(std::uint64_t gen, core::MessageType type, core::ByteView data) = 0;
  // The link ended: a close frame (`code` set: the peer's, or ours once the close handshake is
  // done) or an error / a failed connect or upgrade (`what`).
  virtual void on_link_closed(std::uint64_t gen, std::optional<std::uint16_t> code,
                              const std::string& reason, const std::string& what) = 0;
  // A message was written: queued() went down.
  virtual void on_link_drained(std::uint64_t gen) = 0;

 protected:
  LinkSink() = default;
  LinkSink(const LinkSink&) = default;
  LinkSink& operator=(const LinkSink&) = default;
};

struct LinkOptions {
  std::string host;        // Host header (host[:port])
  std::string path = "/";  // request target
  std::string origin;      // Origin header; none when empty
  std::string user_agent;
  std::chrono::milliseconds handshake_timeout{30000};
  std::size_t write_buffer_bytes = 64 * 1024;  // Beast's buffer for masking client frames
  std::size_t max_message = 16 * 1024 * 1024;  // largest WebSocket message read
};

// How abort() ends the TCP connection.
enum class Drop : std::uint8_t {
  close,  // an orderly close of the socket
  reset,  // SO_LINGER 0: a TCP reset (mana-bench's forced drops)
};

namespace detail {

template <class T>
concept HasSocket = requires(T& t) {
  t.socket();
};
template <class T>
concept HasExpiry = requires(T& t) {
  t.expires_never();
};

}  // namespace detail

template <class Stream>
class ClientLink final : public std::enable_shared_from_this<ClientLink<Stream>> {
 public:
  using Ws = boost::beast::websocket::stream<Stream>;

  // `stream_args` construct the WebSocket stream (an io_context, plus the TLS context for an
  // ssl_stream).
  template <class... Args>
  explicit ClientLink(LinkSink& sink, std::uint64_t gen, Args&&... stream_args)
      : ws_(std::forward<Args>(stream_args)...), sink_(sink), gen_(gen) {}

  // The stream, for the owner's connect and TLS steps before handshake().
  Ws& ws() noexcept { return ws_; }
  // The TCP socket at the bottom of the stream.
  boost::asio::ip::tcp::socket& socket() noexcept {
    auto& lowest = boost::beast::get_lowest_layer(ws_);
    if constexpr (detail::HasSocket<std::remove_reference_t<decltype(lowest)>>) {
      return lowest.socket();
    } else {
      return lowest;
    }
  }
  [[nodiscard]] std::uint64_t generation() const noexcept { return gen_; }
  [[nodiscard]] bool done() const noexcept { return done_; }
  [[nodiscard]] std::size_t queued() const noexcept { return queued_; }
  // Runs once when the link lets go of its socket (closed, failed or aborted).
  void on_release(std::function<void()> f) { release_ = std::move(f); }

  // TCP_NODELAY on the connected socket (handshake() sets it too).
  void tune_socket() {
    boost::system::error_code ignored;
    socket().set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  }

  // The stream below is connected (and its TLS handshake done): upgrade to WebSocket.
  void handshake(const LinkOptions& opt) {
    namespace websocket = boost::beast::websocket;
    namespace http = boost::beast::http;
    if (done_) return;
    tune_socket();
    auto& lowest = boost::beast::get_lowest_layer(ws_);
    if constexpr (detail::HasExpiry<std::remove_reference_t<decltype(lowest)>>) {
      lowest.expires_never();  // the WebSocket timeouts below take over
    }
    websocket::stream_base::timeout t{};
    t.handshake_timeout = opt.handshake_timeout;
    t.idle_timeout = websocket::stream_base::none();  // heartbeats belong to the core
    t.keep_alive_pings = false;
    ws_.set_option(t);
    ws_.set_option(websocket::stream_base::decorator(
        [origin = opt.origin, agent = opt.user_agent](websocket::request_type& req) {
          req.set(http::field::sec_websocket_protocol, mana_subprotocol);
          req.set(http::field::user_agent, agent);
          if (!origin.empty()) req.set(http::field::origin, origin);
        }));
    ws_.read_message_max(opt.max_message);
    ws_.auto_fragment(false);
    ws_.write_buffer_bytes(opt.write_buffer_bytes);
    ws_.async_handshake(res_, opt.host, opt.path,
                        [self = this->shared_from_this()](const boost::system::error_code& ec) {
                          self->on_handshake(ec);
                        });
  }

  // Queues one message of the session (L1, L3, L4).
  void send(core::OutMessage&& m) {
    assert(m.parts.empty());
    if (done_ || close_sent_) return;
    queued_ += m.data.size();
    queue_.push_back(std::move(m));
    do_write();
  }

  // Ends the link with `what` (the owner's connect or TLS step failed): on_link_closed follows.
  void fail(const std::string& what) { finish(std::nullopt, {}, what); }

  // Drops the connection without a close frame; nothing is reported (L2).
  void abort(Drop how = Drop::close) {
    if (done_) return;
    done_ = true;
    release(how);
  }

 private:
  void finish(std::optional<std::uint16_t> code, const std::string& reason,
              const std::string& what) {
    if (done_) return;
    done_ = true;
    release(Drop::close);
    sink_.on_link_closed(gen_, code, reason, what);
  }

  void release(Drop how) {
    boost::system::error_code ignored;
    if (how == Drop::reset && socket().is_open())
      socket().set_option(boost::asio::socket_base::linger(true, 0), ignored);
    socket().close(ignored);
    if (release_) std::exchange(release_, nullptr)();
  }

  void on_handshake(const boost::system::error_code& ec) {
    namespace websocket = boost::beast::websocket;
    namespace http = boost::beast::http;
    if (done_) return;
    if (ec) {
      if (ec == websocket::error::upgrade_declined)
        return fail("gateway refused the WebSocket upgrade: HTTP " +
                    std::to_string(res_.result_int()));
      return fail("WebSocket handshake failed: " + ec.message());
    }
    if (res_[http::field::sec_websocket_protocol] != mana_subprotocol)
      return fail("gateway did not select subprotocol mana.ssh.v1");
    open_ = true;
    do_read();
    sink_.on_link_open(gen_);
    do_write();
  }

  void do_read() {
    if (done_) return;
    ws_.async_read(rbuf_, [self = this->shared_from_this()](const boost::system::error_code& ec,
                                                            std::size_t) { self->on_read(ec); });
  }

  void on_read(const boost::system::error_code& ec) {
    if (done_) return;
    if (ec) {
      if (ec == boost::beast::websocket::error::closed) {
        const auto& r = ws_.reason();
        return finish(static_cast<std::uint16_t>(r.code),
                      std::string(r.reason.data(), r.reason.size()), {});
      }
      return fail(ec.message());
    }
    const auto type = ws_.got_text() ? core::MessageType::text : core::MessageType::binary;
    const auto buf = rbuf_.cdata();
    // The owner may drop this link while it handles the message: the handler holds it.
    sink_.on_link_message(gen_, type,
                          core::ByteView(static_cast<const std::uint8_t*>(buf.data()), buf.size()));
    rbuf_.consume(rbuf_.size());
    do_read();
  }

  void do_write() {
    namespace websocket = boost::beast::websocket;
    if (!open_ || writing_ || done_ || queue_.empty()) return;
    writing_ = true;
    core::OutMessage& m = queue_.front();
    auto self = this->shared_from_this();
    if (m.type == core::MessageType::close) {
      close_sent_ = true;
      ws_.async_close(
          websocket::close_reason(static_cast<websocket::close_code>(m.close_code), m.close_reason),
          [self](const boost::system::error_code& e) { self->on_close_written(e); });
      return;
    }
    ws_.text(m.type == core::MessageType::text);
    ws_.async_write(boost::asio::buffer(m.data),
                    [self](const boost::system::error_code& e, std::size_t) { self->on_write(e); });
  }

  void on_write(const boost::system::error_code& ec) {
    writing_ = false;
    if (done_) return;
    if (ec) return fail(ec.message());
    queued_ -= queue_.front().data.size();
    queue_.pop_front();
    sink_.on_link_drained(gen_);
    do_write();
  }

  void on_close_written(const boost::system::error_code& ec) {
    writing_ = false;
    if (done_) return;
    const auto code = static_cast<std::uint16_t>(queue_.front().close_code);
    queue_.clear();
    queued_ = 0;
    finish(code, {}, ec ? ec.message() : std::string{});
  }

  Ws ws_;
  LinkSink& sink_;
  const std::uint64_t gen_;
  boost::beast::websocket::response_type res_;
  boost::beast::flat_buffer rbuf_;
  std::deque<core::OutMessage> queue_;
  std::size_t queued_ = 0;
  std::function<void()> release_;
  bool open_ = false;
  bool writing_ = false;
  bool close_sent_ = false;
  bool done_ = false;
};

}  // namespace mana::host
