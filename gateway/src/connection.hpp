// Connection: one accepted WebSocket (ws:// or wss://, see WsStream). Reads messages into its
// Session (ServerSession::receive with the message type), writes the session's output with one
// write in flight and a bounded outbound queue whose size drives the `transport` pause reason
// (high/low water marks), and turns close frames and transport errors into receive_close /
// transport_lost.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "context.hpp"
#include "mana/core/wire_profile.hpp"
#include "ws_stream.hpp"

namespace mana::gateway {

class Session;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Longest wait for the peer's close frame after ours was written (capped by
  // handshake_timeout_ms); RFC 6455 lets the server close the TCP connection first.
  static constexpr std::uint32_t close_handshake_ms = 1000;

  Connection(Context& ctx, WsStream&& ws, std::string client_ip, std::string origin);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  void set_session(std::shared_ptr<Session> s);
  // The session stops using this transport (closed, detached, or moved by a resume). A queued
  // close frame is still sent; the socket is closed when the queue drains or after a grace time.
  void release_session();
  // Another transport took over the session: drop queued output, close with 4011 "superseded".
  void supersede();
  // Close without a session (caps at upgrade time): 4010 etc.
  void close_now(std::uint16_t code, const std::string& reason);
  void send(core::OutMessage&& m);
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  [[nodiscard]] const std::string& client_ip() const noexcept { return ip_; }

 private:
  void do_read();
  void on_read_some(const boost::system::error_code& ec, std::size_t n);
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void do_write();
  void on_written(const boost::system::error_code& ec);
  void update_pause();
  void start_linger();
  void finish();

  Context& ctx_;
  WsStream ws_;
  const std::uint64_t id_;
  std::string ip_;
  std::string origin_;
  std::shared_ptr<Session> session_;
  boost::beast::flat_buffer rbuf_;
  static constexpr std::size_t first_read_bytes = 1536;  // a frame header and a small message
  static constexpr std::size_t read_step_bytes = 64 * 1024;
  bool message_started_ = false;
  std::deque<core::OutMessage> queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool close_queued_ = false;
  bool read_done_ = false;
  bool paused_ = false;
  bool finished_ = false;
  boost::asio::steady_timer linger_;
};

}  // namespace mana::gateway
