// Connection: one accepted WebSocket (ws:// or wss://, see WsStream). Reads messages into its
// Session (ServerSession::receive with the message type), writes the session's output with one
// write in flight and a bounded outbound queue whose size drives the `transport` pause reason
// (high/low water marks), and turns close frames and transport errors into receive_close /
// transport_lost.
//
// A message is written as one gather write of its header (`data`) and its payload parts, which
// reference the session's replay buffers (shared payloads): the payload is not copied again on
// its way to the socket (server frames are unmasked and auto_fragment is off, so Beast writes the
// caller's buffers as they are).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "context.hpp"
#include "mana/core/small_queue.hpp"
#include "mana/core/wire_profile.hpp"
#include "ws_stream.hpp"

namespace mana::gateway {

class Session;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Longest wait for the peer's close frame after ours was written (capped by
  // handshake_timeout_ms); RFC 6455 lets the server close the TCP connection first.
  static constexpr std::uint32_t close_handshake_ms = 1000;
  // The same after a policy close (4004: floods, rate limits), whose peer may keep sending.
  static constexpr std::uint32_t policy_close_ms = 100;

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
  // A handover forwards this client to the old process (forward_relay.hpp): the WebSocket
  // leaves this Connection, which ends without closing it (and is no longer counted). Empty
  // while a write is in flight or after the end.
  std::optional<WsStream> release_stream();
  // Wire size of every queued message (the one being written included): what the socket has
  // not taken yet. It drives the transport pause and the outbound_max bound.
  [[nodiscard]] std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  // The part of queued_bytes() the queue holds itself (headers, control messages); payload
  // parts shared with the session's replay buffers are counted there, not here.
  [[nodiscard]] std::size_t owned_bytes() const noexcept { return owned_bytes_; }
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
  // min(handshake_timeout_ms, ms): how long to wait for the peer's close frame.
  [[nodiscard]] std::chrono::milliseconds close_wait(std::uint32_t ms) const;
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
  // The buffers of the write in flight, as a ConstBufferSequence that is cheap to copy (Beast
  // copies the sequence into its write operation): two pointers into wbufs_, which stays
  // unchanged until the write completes.
  struct BufferSpan {
    // Names required by Asio's buffer sequence concept.
    // NOLINTNEXTLINE(readability-identifier-naming)
    using value_type = boost::asio::const_buffer;
    // NOLINTNEXTLINE(readability-identifier-naming)
    using const_iterator = const boost::asio::const_buffer*;
    const_iterator first = nullptr;
    const_iterator last = nullptr;
    [[nodiscard]] const_iterator begin() const noexcept { return first; }
    [[nodiscard]] const_iterator end() const noexcept { return last; }
  };

  core::SmallQueue<core::OutMessage> queue_;
  std::vector<boost::asio::const_buffer> wbufs_;
  std::size_t queued_bytes_ = 0;
  std::size_t owned_bytes_ = 0;
  bool writing_ = false;
  bool close_queued_ = false;
  bool read_done_ = false;
  bool paused_ = false;
  bool finished_ = false;
  boost::asio::steady_timer linger_;
};

}  // namespace mana::gateway
