// SPDX-License-Identifier: Apache-2.0
// Handover: a same-host upgrade without losing sessions ([server] handover_socket; the pattern
// of Teleport's RFD 0165). The running gateway listens on a Unix socket; a new gateway started
// with the same configuration connects to it at startup, receives the listening TCP socket
// (SCM_RIGHTS: the same kernel socket, so no connection in its accept queue is lost and no
// SO_REUSEPORT race exists), and starts accepting on it. The old process then stops accepting
// and drains (server.drain_timeout_ms): its sessions run until they end or the timeout passes.
// Resumes the new process does not know are forwarded to the old one over the same Unix
// connection (forward_relay.hpp) until the old one has exited; after that they get the uniform
// 4011 as any unknown resume.
//
// Rules:
//   - Only a peer of our own uid (SO_PEERCRED) is served, in both directions; the socket file is
//     created mode 0600. Anything else on it gets a typed HandoverError, a log line and
//     mana_handover_total{outcome}; the connection is closed and both processes go on.
//   - Every wait is bounded: the new process's startup exchange (startup_timeout), the old
//     process's wait for a peer's first record (peer_timeout) and for `taken` (peer_timeout).
//   - One handover at a time; a peer that fails before `taken` changes nothing: the old process
//     accepts again.
//   - TLS stays in the new process: a forwarded client is relayed at the WebSocket message level.
// Invariants:
//   1. The old process stops accepting before it sends the listener, and accepts again only when
//      the handover failed before `taken`.
//   2. The old process never unlinks the socket path after a handover (the new one owns it).
//   3. forwarding() is true only between `taken` and the old process's end of the connection.
//   4. A forwarded client's address is believed only because it arrives on this connection,
//      from a same-uid peer that already holds our listener.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>

#include "context.hpp"
#include "handover_wire.hpp"

namespace mana::gateway {

class Handover {
 public:
  static constexpr std::chrono::milliseconds startup_timeout{5000};
  static constexpr std::chrono::milliseconds peer_timeout{3000};

  // The Listener's side of a handover (old process).
  struct Hooks {
    std::function<int()> give;     // stop accepting; the listener's descriptor
    std::function<void()> taken;   // the new process accepts: drain
    std::function<void()> failed;  // before `taken`: accept again
    std::function<void(Fd, std::string ip, std::string origin)> forwarded;
  };

  Handover(Context& ctx, Hooks hooks);
  ~Handover();
  Handover(const Handover&) = delete;
  Handover& operator=(const Handover&) = delete;

  // New process, before the event loop runs (blocking, bounded by startup_timeout): takes the
  // running process's listener. Returns the descriptor, or an invalid Fd with `err` no_peer
  // (nothing listens: bind as usual) or the reason the handover was refused.
  Fd take(HandoverError& err);
  // After take() succeeded and accept() is armed: tells the old process, keeps the connection
  // for forwarding and watches for its end.
  void confirm_taken();
  // Listens on the path for the next upgrade (unlinks a stale socket file first).
  void listen();
  // The process ends: the socket file goes (unless handed over), every wait is cancelled.
  void stop();

  // Forwarding (new process): a resume this process does not know can go to the old one.
  [[nodiscard]] bool forwarding() const noexcept { return old_.is_open() && !old_gone_; }
  // Sends one end of a new socket pair to the old process with the client's address and
  // origin; the other end is returned (invalid when the old process is gone).
  Fd open_forward(const std::string& ip, const std::string& origin);

 private:
  void do_accept();
  void on_peer(boost::asio::local::stream_protocol::socket sock);
  // The next whole record from peer_ (with the descriptor that came with it).
  void read_peer(std::function<void(HandoverError, HandoverRecord)> done);
  void drop_peer();
  void refuse(const char* outcome, HandoverError err);
  void watch_old();
  void watch_new();

  Context& ctx_;
  Hooks hooks_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  // Old process: the peer being served (or the new process after `taken`).
  std::unique_ptr<boost::asio::local::stream_protocol::socket> peer_;
  std::string peer_buf_;
  Fd peer_fd_;
  std::uint64_t peer_gen_ = 0;  // handlers of a dropped peer do nothing
  bool given_ = false;          // the listener was sent to the current peer
  boost::asio::steady_timer peer_timer_;
  // New process: the connection to the old one.
  boost::asio::local::stream_protocol::socket old_;
  std::string old_buf_;
  bool old_gone_ = false;
  bool handed_over_ = false;
  bool stopped_ = false;
  std::uint64_t bound_dev_ = 0;
  std::uint64_t bound_ino_ = 0;
};

}  // namespace mana::gateway
