// SshEngine, the states from the session channel on: open, env, pty, shell/exec, the running
// data pump (input, window changes, signals, EOF, output, keepalives), the remote end and the
// local close; and the application-side calls that feed the pump. See ssh_engine.hpp for the
// contract and invariants.
#include <libssh2.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "ssh_engine.hpp"

// libssh2's internal packet lookup (src/packet.c, a global symbol of the static library): used
// only to take the replies to our own keepalive requests out of libssh2's packet list, which
// would otherwise keep every reply (libssh2 never asks for them), and to see that they arrived.
extern "C" int _libssh2_packet_ask(LIBSSH2_SESSION* session, unsigned char packet_type,
                                   unsigned char** data, size_t* data_len, int match_ofs,
                                   const unsigned char* match_buf, size_t match_len);

namespace mana::ssh {
namespace {

// One Data event carries up to kReadChunk bytes: libssh2_channel_read_ex joins the queued SSH
// packets into the caller's buffer, and every event costs a JS object, a Uint8Array and a round
// through the session's pump, so fewer, larger events are cheaper (bench/browser).
constexpr std::size_t kReadChunk = 128 * 1024;
constexpr std::size_t kWriteChunk = 32 * 1024;  // per libssh2_channel_write_ex call
constexpr unsigned char kMsgRequestSuccess = 81;
constexpr unsigned char kMsgRequestFailure = 82;

}  // namespace

SshEngine::Progress SshEngine::do_channel_open() {
  if (!cfg_.direct_host.empty()) return do_direct_open();
  channel_ = libssh2_channel_open_ex(session_, "session", 7, cfg_.channel_window,
                                     LIBSSH2_CHANNEL_PACKET_DEFAULT, nullptr, 0);
  if (channel_ == nullptr) {
    const int err = last_errno();
    if (err == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    fail(CloseKind::channel_failed, err, last_error());
    return Progress::blocked;
  }
  env_index_ = 0;
  set_state(EngineState::channel_env);
  return Progress::again;
}

// Tunnel mode: a direct-tcpip channel (RFC 4254 7.2) to direct_host:direct_port; running at once.
// A refusal closes with channel_failed and libssh2's message, which names the open-failure reason
// ("Channel open failure (administratively prohibited)", ... "(connect failed)").
SshEngine::Progress SshEngine::do_direct_open() {
  channel_ = libssh2_channel_direct_tcpip_ex(session_, cfg_.direct_host.c_str(),
                                             static_cast<int>(cfg_.direct_port), "127.0.0.1", 0);
  if (channel_ == nullptr) {
    const int err = last_errno();
    if (err == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    fail(CloseKind::channel_failed, err, last_error());
    return Progress::blocked;
  }
  if (cfg_.keepalive_s > 0) keepalive_at_ = now_ms_ + cfg_.keepalive_s * 1000.0;
  set_state(EngineState::running);
  events_.emplace_back(event::Ready{});
  return Progress::again;
}

SshEngine::Progress SshEngine::do_channel_env() {
  while (env_index_ < cfg_.env.size()) {
    const auto& [k, v] = cfg_.env[env_index_];
    const int rc = libssh2_channel_setenv_ex(channel_, k.data(), static_cast<unsigned>(k.size()),
                                             v.data(), static_cast<unsigned>(v.size()));
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    if (rc == LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED) {
      events_.emplace_back(event::Diagnostic{"ssh_env_rejected", k});
    } else if (rc != 0) {
      fail(CloseKind::channel_failed, rc, last_error());
      return Progress::blocked;
    }
    ++env_index_;
  }
  set_state(cfg_.pty ? EngineState::channel_pty : EngineState::channel_start);
  return Progress::again;
}

SshEngine::Progress SshEngine::do_channel_pty() {
  const int rc = libssh2_channel_request_pty_ex(
      channel_, cfg_.term_type.data(), static_cast<unsigned>(cfg_.term_type.size()), nullptr, 0,
      static_cast<int>(cfg_.cols), static_cast<int>(cfg_.rows), 0, 0);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
  if (rc != 0) {
    fail(CloseKind::channel_failed, rc, "pty request refused: " + last_error());
    return Progress::blocked;
  }
  set_state(EngineState::channel_start);
  return Progress::again;
}

SshEngine::Progress SshEngine::do_channel_start() {
  int rc = 0;
  if (cfg_.command.empty()) {
    rc = libssh2_channel_process_startup(channel_, "shell", 5, nullptr, 0);
  } else {
    rc = libssh2_channel_process_startup(channel_, "exec", 4, cfg_.command.data(),
                                         static_cast<unsigned>(cfg_.command.size()));
  }
  if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
  if (rc != 0) {
    fail(CloseKind::channel_failed, rc,
         std::string(cfg_.command.empty() ? "shell" : "exec") + " refused: " + last_error());
    return Progress::blocked;
  }
  // Resizes asked for before the pty existed are covered by the pty request itself.
  if (resize_ && resize_->first == cfg_.cols && resize_->second == cfg_.rows) resize_.reset();
  if (cfg_.keepalive_s > 0) keepalive_at_ = now_ms_ + cfg_.keepalive_s * 1000.0;
  set_state(EngineState::running);
  events_.emplace_back(event::Ready{});
  return Progress::again;
}

bool SshEngine::read_stream(int stream, bool* progressed, bool* eof_seen) {
  while (unconsumed_ < cfg_.app_high_water && out_.size() < cfg_.out_bound) {
    const std::size_t want = std::min(kReadChunk, cfg_.app_high_water - unconsumed_);
    if (read_buf_.size() < kReadChunk) read_buf_.resize(kReadChunk);  // once per engine
    const ssize_t n =
        libssh2_channel_read_ex(channel_, stream, reinterpret_cast<char*>(read_buf_.data()), want);
    if (n == LIBSSH2_ERROR_EAGAIN) return true;
    if (n == 0) {
      *eof_seen = true;
      return true;
    }
    if (n < 0) {
      fail(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, static_cast<int>(n),
           last_error());
      return false;
    }
    event::Data d;
    d.stream = stream;
    d.bytes.assign(read_buf_.data(), read_buf_.data() + n);
    unconsumed_ += static_cast<std::size_t>(n);
    events_.emplace_back(std::move(d));
    *progressed = true;
  }
  return true;
}

void SshEngine::maybe_keepalive() {
  if (session_ == nullptr) return;
  // Replies to earlier keepalives (OpenSSH answers REQUEST_FAILURE): take them out of libssh2's
  // packet list so it stays bounded, and report the round trip.
  for (unsigned char type : {kMsgRequestFailure, kMsgRequestSuccess}) {
    unsigned char* data = nullptr;
    std::size_t len = 0;
    while (_libssh2_packet_ask(session_, type, &data, &len, 0, nullptr, 0) == 0) {
      std::free(data);
      data = nullptr;
      if (keepalive_sent_at_) {
        events_.emplace_back(event::Diagnostic{
            "ssh_keepalive_answered",
            "rtt " + std::to_string(static_cast<long>(now_ms_ - *keepalive_sent_at_)) + " ms"});
        keepalive_sent_at_.reset();
      }
    }
  }
  if (!keepalive_at_ || now_ms_ < *keepalive_at_) return;
  int next_s = 0;
  const std::uint64_t before = bytes_sent_;
  const int rc = libssh2_keepalive_send(session_, &next_s);
  if (rc != 0 && rc != LIBSSH2_ERROR_EAGAIN) {
    events_.emplace_back(event::Diagnostic{"ssh_keepalive_failed", last_error()});
  } else if (bytes_sent_ > before) {
    keepalive_sent_at_ = now_ms_;
    events_.emplace_back(event::Diagnostic{"ssh_keepalive_sent", ""});
  }
  keepalive_at_ = now_ms_ + std::max(1, next_s) * 1000.0;
}

SshEngine::Progress SshEngine::do_running() {
  if (close_requested_) {
    set_state(EngineState::closing);
    return Progress::again;
  }
  bool progressed = false;
  // 1. Input for the remote process (one SSH packet per call; invariant 2 per call).
  while (!write_q_.empty() && out_.size() < cfg_.out_bound) {
    const std::size_t n = std::min<std::size_t>(write_q_.size(), kWriteChunk);
    const ssize_t w =
        libssh2_channel_write_ex(channel_, 0, reinterpret_cast<const char*>(write_q_.front()), n);
    if (w == LIBSSH2_ERROR_EAGAIN) break;
    if (w < 0) {
      fail(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, static_cast<int>(w),
           last_error());
      return Progress::blocked;
    }
    write_q_.drop(static_cast<std::size_t>(w));
    progressed = true;
  }
  if (out_.size() >= cfg_.out_bound) return Progress::blocked;
  // 2. Window change (coalesced: only the latest size is kept).
  if (resize_ && cfg_.pty) {
    const int rc = libssh2_channel_request_pty_size_ex(channel_, static_cast<int>(resize_->first),
                                                       static_cast<int>(resize_->second), 0, 0);
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    if (rc != 0) events_.emplace_back(event::Diagnostic{"ssh_resize_failed", last_error()});
    resize_.reset();
    progressed = true;
  }
  // 3. Signals.
  while (!signals_.empty()) {
    const std::string& s = signals_.front();
    const int rc = libssh2_channel_signal_ex(channel_, s.data(), s.size());
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    if (rc != 0) events_.emplace_back(event::Diagnostic{"ssh_signal_failed", last_error()});
    signals_.pop_front();
    progressed = true;
  }
  // 4. EOF after all queued input.
  if (eof_requested_ && !eof_sent_ && write_q_.empty()) {
    const int rc = libssh2_channel_send_eof(channel_);
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    eof_sent_ = true;
    progressed = true;
  }
  // 5. Output, while the application keeps up (invariant 3).
  bool eof0 = false;
  bool eof1 = false;
  if (!read_stream(0, &progressed, &eof0)) return Progress::blocked;
  if (!read_stream(1, &progressed, &eof1)) return Progress::blocked;
  // 6. Keepalive on its timer.
  maybe_keepalive();
  if (state_ == EngineState::closed) return Progress::blocked;
  // 7. The remote side finished sending.
  if (unconsumed_ < cfg_.app_high_water && libssh2_channel_eof(channel_) != 0) {
    set_state(EngineState::draining);
    return Progress::again;
  }
  return progressed ? Progress::again : Progress::blocked;
}

SshEngine::Progress SshEngine::do_draining() {
  // The exit status / signal arrive before the remote close; wait for it.
  const int rc = libssh2_channel_wait_closed(channel_);
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    maybe_keepalive();
    return Progress::blocked;
  }
  event::Exit ex;
  char* sig = nullptr;
  std::size_t sig_len = 0;
  char* msg = nullptr;
  std::size_t msg_len = 0;
  if (libssh2_channel_get_exit_signal(channel_, &sig, &sig_len, &msg, &msg_len, nullptr, nullptr) ==
          0 &&
      sig != nullptr) {
    ex.signal.assign(sig, sig_len);
    if (msg != nullptr) ex.message.assign(msg, msg_len);
  } else {
    ex.code = libssh2_channel_get_exit_status(channel_);
  }
  if (sig != nullptr) libssh2_free(session_, sig);
  if (msg != nullptr) libssh2_free(session_, msg);
  events_.emplace_back(std::move(ex));
  set_state(EngineState::closing);
  return Progress::again;
}

SshEngine::Progress SshEngine::do_closing() {
  if (channel_ != nullptr && !channel_closed_) {
    const int rc = libssh2_channel_close(channel_);
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    channel_closed_ = true;
  }
  if (!disconnect_sent_) {
    const int rc =
        libssh2_session_disconnect_ex(session_, SSH_DISCONNECT_BY_APPLICATION, "closed", "");
    if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    disconnect_sent_ = true;
  }
  finish_closed(close_result_.value_or(event::Closed{}));
  return Progress::blocked;
}

// ---- application side
// ----------------------------------------------------------------------------

std::size_t SshEngine::write_room() const {
  if (state_ == EngineState::closed || eof_requested_ || close_requested_) return 0;
  return cfg_.write_cap - std::min(cfg_.write_cap, write_q_.size());
}

std::size_t SshEngine::write(const std::uint8_t* p, std::size_t n) {
  const std::size_t k = std::min(n, write_room());
  write_q_.append(p, k);
  return k;
}

void SshEngine::consume(std::size_t n) {
  unconsumed_ -= std::min(n, unconsumed_);
}

void SshEngine::resize(std::uint32_t cols, std::uint32_t rows) {
  if (cols == 0 || rows == 0 || cols > 10000 || rows > 10000) return;
  if (state_ < EngineState::channel_start) {
    cfg_.cols = cols;  // not requested yet: the pty request carries it
    cfg_.rows = rows;
    return;
  }
  resize_ = {cols, rows};
}

bool SshEngine::signal(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '@' || c == '.' || c == '-')) {
      return false;
    }
  }
  if (signals_.size() < 16 && state_ < EngineState::draining) signals_.push_back(name);
  return true;
}

void SshEngine::send_eof() {
  eof_requested_ = true;
}

void SshEngine::close() {
  if (state_ == EngineState::closed || close_requested_) return;
  close_requested_ = true;
  if (state_ == EngineState::running || state_ == EngineState::draining) {
    if (state_ == EngineState::draining) set_state(EngineState::closing);
    return;
  }
  // Not running yet (or already closing): end the SSH session with a DISCONNECT when the key
  // exchange is done and the host key was accepted, else just stop.
  if (state_ == EngineState::handshake || state_ == EngineState::hostkey_check) {
    finish_closed(event::Closed{});
    return;
  }
  if (state_ != EngineState::closing) set_state(EngineState::closing);
}

}  // namespace mana::ssh
