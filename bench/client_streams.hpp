// Byte streams of the mana-bench client, one interface for the three peers:
//   tcp  — a TCP connection straight to the target (loopback baseline);
//   raw  — a binary WebSocket through a plain relay (websockify, a Node `ws` relay);
//   mana — a channel of a mana session (core::ClientSession) through mana-gateway; several
//          channels share one WebSocket (ClientSetup::channels_per_conn).
// Every stream strips the target's banner line before it reports on_open(); on_data() then sees
// the stream bytes only. All of it runs on one io_context thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "bench_util.hpp"
#include "mana/core/messages.hpp"
#include "stream_data.hpp"

namespace mana::bench {

enum class Proto : std::uint8_t { tcp, raw, mana };

// How a stream ended: eof = clean (TCP FIN, WebSocket close handshake, channel close).
enum class EndKind : std::uint8_t { eof, reset, error };
const char* to_string(EndKind k) noexcept;

struct ClientSetup {
  Proto proto = Proto::tcp;
  boost::asio::ip::tcp::endpoint endpoint;  // the address connected to (resolved once)
  WsUrl url;                                // raw / mana
  core::Target target;                      // mana: the channel's target
  std::string token;                        // mana: bearer JWT
  std::string origin;                       // WebSocket Origin header (optional)
  std::string profile = "mana.v1";
  std::uint64_t window = 2 * 1024 * 1024;  // mana: receive window (<= the gateway's max_window)
  std::uint64_t replay = 8 * 1024 * 1024;  // mana: client->server replay buffer
  std::size_t channels_per_conn = 4;
  std::size_t ws_write_buffer = 256 * 1024;  // Beast's masking buffer (client frames)
  std::size_t read_buffer = 1 << 20;         // per raw stream in bulk mode
  bool bulk = true;                          // false: small lazily grown buffers (idle, connect)
  SourcePool sources;
};

class Stream;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Connected and the banner line arrived.
  virtual void on_open(Stream& s) = 0;
  virtual void on_data(Stream& s, ByteView data) = 0;
  // A write() that returned 0 (or a finished one) may be retried now.
  virtual void on_writable(Stream& s) = 0;
  virtual void on_end(Stream& s, EndKind end, const std::string& what) = 0;

 protected:
  StreamHandler() = default;
  StreamHandler(const StreamHandler&) = default;
  StreamHandler& operator=(const StreamHandler&) = default;
};

class Stream {
 public:
  Stream(StreamHandler& h, std::size_t index) : handler_(h), index_(index) {}
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  virtual void start() = 0;
  // Offers bytes that stay valid until the stream ends (generator data). Returns how many were
  // taken (0: wait for on_writable).
  virtual std::size_t write(ByteView data) = 0;
  // Ends our direction cleanly once everything written is sent (TCP shutdown, WebSocket close,
  // channel close). on_end follows when the peer completed the close.
  virtual void finish() = 0;
  // Ends the stream now without reporting on_end (teardown after the measurement).
  virtual void close_now() = 0;
  // Drops the TCP connection with a reset (mana: the session then resumes on a new one).
  virtual void force_drop() = 0;
  // Limits reading: the stream reads at most `budget` more bytes until the next call.
  void set_read_budget(std::uint64_t budget) {
    limited_ = true;
    budget_ = budget;
    on_budget();
  }
  void add_read_budget(std::uint64_t n) { set_read_budget(budget_ + n); }

  [[nodiscard]] std::size_t index() const noexcept { return index_; }
  [[nodiscard]] bool opened() const noexcept { return opened_; }
  [[nodiscard]] bool ended() const noexcept { return ended_; }
  // mana: drop -> resumed (Ready) and drop -> first byte after the resume, when a drop happened.
  [[nodiscard]] virtual std::optional<double> resume_accepted_us() const { return std::nullopt; }
  [[nodiscard]] virtual std::optional<double> resume_first_byte_us() const { return std::nullopt; }

 protected:
  // Bytes the stream may read now.
  [[nodiscard]] std::uint64_t allowance() const noexcept { return limited_ ? budget_ : UINT64_MAX; }
  void took(std::uint64_t n) noexcept {
    if (limited_) budget_ -= n < budget_ ? n : budget_;
  }
  virtual void on_budget() {}
  // Received bytes: the banner is stripped first, then on_open() and on_data().
  void deliver(const std::uint8_t* p, std::size_t n);
  void end(EndKind k, const std::string& what);
  StreamHandler& handler() noexcept { return handler_; }

 private:
  StreamHandler& handler_;
  const std::size_t index_;
  std::size_t banner_seen_ = 0;
  bool opened_ = false;
  bool ended_ = false;
  bool limited_ = false;
  std::uint64_t budget_ = 0;
};

// Creates the streams of one op; mana streams are packed channels_per_conn to a session.
class Connector {
 public:
  Connector(boost::asio::io_context& io, ClientSetup& setup);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;
  std::shared_ptr<Stream> make(StreamHandler& h, std::size_t index);
  // The next mana stream starts a new session.
  void new_session() { fill_ = setup_.channels_per_conn; }
  // WebSockets / TCP connections still open (teardown waits for 0).
  [[nodiscard]] static std::size_t live_transports() noexcept;

 private:
  boost::asio::io_context& io_;
  ClientSetup& setup_;
  std::vector<std::uint8_t> shared_read_;  // tcp streams read into it (one thread)
  std::shared_ptr<void> conn_;             // the mana session being filled
  std::size_t fill_ = 0;
};

}  // namespace mana::bench
