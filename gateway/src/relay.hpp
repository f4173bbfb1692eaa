// Relay: one `tcp` channel's target connection.
//
//   policy precheck -> resolve once -> check every address -> connect (timeout) to exactly the
//   checked endpoints -> accept_open / reject_open -> SSH banner gate -> relay under credit.
//
// Target -> client: wait until the socket is readable, then read at most
// ServerSession::available(id) bytes (nothing while it is 0: TCP backpressure reaches the target;
// resume on ChannelWritable) into the process-wide Context::read_scratch and hand them to
// session.write() from there; only bytes the core did not take are copied (pending_). An idle
// channel therefore owns no read buffer.
// Client -> target: one async_write in flight; session.consume(id, n) only after it completed,
// so credit is granted for bytes the target has taken. When the channel closes, bytes already
// received for the target are still written (stop_after_flush, bounded in time) before the
// target socket closes. Banner gate: until the target sent a line
// starting "SSH-" (within banner_timeout_ms and banner_max_bytes) no client byte reaches the
// target and no target byte reaches the client; otherwise the channel closes with "not_ssh".
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "context.hpp"
#include "mana/core/messages.hpp"
#include "mana/core/small_queue.hpp"

namespace mana::gateway {

class Session;

class Relay : public std::enable_shared_from_this<Relay> {
 public:
  Relay(Context& ctx, std::weak_ptr<Session> session, core::ChannelId id, core::Target target,
        std::optional<std::vector<std::string>> claims, std::string principal);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  void start();
  void on_client_data(core::Bytes&& data);
  void on_writable();
  void stop();
  // The channel closed: write what is still queued for the target, then stop().
  void stop_after_flush();
  // Longest wait for a target to take those bytes.
  static constexpr std::uint32_t drain_timeout_ms = 5000;
  // Client messages written to the target in one gather write.
  static constexpr std::size_t max_gather = 16;
  [[nodiscard]] std::uint64_t buffered() const noexcept;
  // Phase, reading/stall flags and bytes held, for GET /debug/sessions (debug_view.cpp).
  [[nodiscard]] nlohmann::json debug_view() const;

 private:
  enum class Phase : std::uint8_t { resolving, connecting, banner, relaying, closing };

  void on_resolved(const boost::system::error_code& ec,
                   const boost::asio::ip::tcp::resolver::results_type& results);
  void reject(const std::string& code, const std::string& msg, const std::string& reason);
  // A resolve or connect step failed: open_err "timeout" if our timer fired, else
  // "target_unreachable" (`step` names the step in the log, `msg` goes to the client).
  void reject_step(const boost::system::error_code& ec, const std::string& step,
                   const std::string& msg);
  void on_connected(const boost::system::error_code& ec);
  void start_read();
  void on_readable(const boost::system::error_code& ec);
  void on_read(const boost::system::error_code& ec, const std::uint8_t* data, std::size_t n);
  // Relaying: hand target bytes to the core; keep what it did not take in pending_.
  // False when the channel is gone or closing.
  bool deliver(const std::uint8_t* data, std::size_t n);
  // Hands `view` to the core as far as credit allows: counts what it took (metrics, the
  // session's free-message budget) and starts a credit stall when it took less. Nullopt when
  // the channel is gone or closing (ChannelClosed follows).
  std::optional<std::size_t> write_to_client(Session& s, core::ByteView view);
  bool scan_banner();
  void flush_to_client();
  void flush_to_target();
  void close_channel(const std::string& reason);
  void begin_stall();
  void end_stall();
  std::shared_ptr<Session> session() const { return session_.lock(); }

  Context& ctx_;
  std::weak_ptr<Session> session_;
  const core::ChannelId id_;
  core::Target target_;
  std::optional<std::vector<std::string>> claims_;
  std::string principal_;
  std::uint64_t session_id_ = 0;
  Phase phase_ = Phase::resolving;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  std::vector<boost::asio::ip::tcp::endpoint> endpoints_;
  std::string resolve_name_;
  bool timed_out_ = false;
  bool stopped_ = false;
  bool counted_ = false;
  bool reading_ = false;
  bool writing_ = false;
  bool target_eof_ = false;
  bool close_sent_ = false;
  bool draining_ = false;  // closed channel, still writing to_target_ (stop_after_flush)
  bool stalled_ = false;
  core::Timestamp stall_start_;
  std::size_t want_ = 0;               // read size decided when the wait was armed
  std::vector<std::uint8_t> banner_;   // target bytes held until the banner is seen
  std::vector<std::uint8_t> pending_;  // target bytes not yet taken by session.write
  std::size_t pending_off_ = 0;
  core::SmallQueue<core::Bytes> to_target_;
  std::uint64_t to_target_bytes_ = 0;
};

}  // namespace mana::gateway
