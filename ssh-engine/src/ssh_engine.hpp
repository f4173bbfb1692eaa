// SshEngine: an SSH client (libssh2, non-blocking) driven like the sans-I/O core.
//
// libssh2 never touches a socket: its send/recv callbacks (libssh2_session_callback_set2) read
// and write two bounded byte queues. The host (js-glue) pushes the bytes a mana channel
// delivered (push_input), pulls what libssh2 wrote (take_output, only as much as the channel
// accepts), and calls step(now) after every input, credit grant, consumption and timer.
//
// Invariants
//   1. Nothing blocks: every libssh2 call runs in non-blocking mode; LIBSSH2_ERROR_EAGAIN ends
//      the current step and the same call is repeated by the next step (libssh2's rule).
//   2. recv returns -EAGAIN when the inbound queue is empty, also after transport_closed():
//      libssh2 first processes every packet it holds (a server's last data, exit status and
//      close arrive with the end of the transport), then step() closes with transport_closed
//      unless the session ended by itself; send
//      returns -EAGAIN once the outbound queue holds kOutputHardCap bytes. step() calls into
//      libssh2 only while the outbound queue holds less than out_bound, so a whole packet is
//      always accepted and libssh2 is never left with a half-sent packet (which would make a
//      different next call fail with LIBSSH2_ERROR_BAD_USE).
//   3. Output to the application is read from the SSH channel only while the application holds
//      less than app_high_water delivered-but-unconsumed bytes (consume()), so libssh2's channel
//      window (2 MiB) backpressures sshd when the application is slow.
//   4. Events are pulled (poll_event); every failure ends in exactly one Closed event with a
//      typed reason, libssh2's error code and message; after it the engine is inert.
//   5. A rejected host key stops the engine before anything is sent after the key exchange.
//   6. Until the handshake ends, the bytes libssh2 reads also go through a bounded tap that keeps
//      the server's first KEXINIT (ssh_kexinit.hpp): a failed negotiation closes with
//      algorithm_mismatch naming the kind and both lists, which libssh2 does not report.
//   7. A security key signs outside the engine: libssh2's sign callback hands the data to sign
//      out as a SignRequest event and returns EAGAIN (state auth_sign) until sign_result() gives
//      the signature blob; libssh2 then calls it again with the same data and gets the blob.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ssh_kexinit.hpp"

struct _LIBSSH2_SESSION;
struct _LIBSSH2_CHANNEL;

namespace mana::ssh {

/// A FIFO of bytes with a compacting vector (no per-byte nodes). Bounded by its users.
class ByteQueue {
 public:
  [[nodiscard]] std::size_t size() const { return data_.size() - head_; }
  [[nodiscard]] bool empty() const { return size() == 0; }
  [[nodiscard]] const std::uint8_t* front() const { return data_.data() + head_; }
  void append(const std::uint8_t* p, std::size_t n);
  /// Copies up to n bytes to out and removes them; returns how many.
  std::size_t read(std::uint8_t* out, std::size_t n);
  void drop(std::size_t n);
  void clear();

 private:
  std::vector<std::uint8_t> data_;
  std::size_t head_ = 0;
};

enum class EngineState : std::uint8_t {
  handshake,      // banner + key exchange
  hostkey_check,  // waits for host_key_decision()
  auth_list,      // userauth_list (the "none" request)
  auth_try,       // one method in progress
  auth_prompt,    // keyboard-interactive: waits for kbd_answers()
  auth_sign,      // security key: waits for sign_result()
  channel_open,   // session channel
  channel_env,    // setenv requests
  channel_pty,    // pty-req
  channel_start,  // shell / exec
  running,        // data flows
  draining,       // remote EOF seen: waits for the remote close (exit status arrives before)
  closing,        // local close: channel close + disconnect
  closed,
};

const char* to_string(EngineState s);

enum class AuthKind : std::uint8_t { password, publickey, keyboard_interactive, security_key };
const char* to_string(AuthKind k);
/// The SSH method name a kind uses ("publickey" for security_key).
const char* wire_method(AuthKind k);

struct AuthMethod {
  AuthKind kind = AuthKind::password;
  // password, the private key text (OpenSSH or PEM), or for security_key the public key blob
  // (sk-ecdsa-sha2-nistp256@openssh.com: string type, string curve, string point, string
  // application); the signature comes from sign_result().
  std::string secret;
  std::string passphrase;  // publickey only
};

struct EngineConfig {
  std::string username;
  std::vector<AuthMethod> auth;
  // libssh2 preference lists (comma separated). js-glue validates the names against
  // supported_algorithms() first; libssh2 drops names it does not know.
  std::string hostkey_pref;  // empty = ed25519 first (kDefaultHostkeys)
  std::string kex_pref;      // empty = curve25519 first, no SHA-1 (kDefaultKex)
  std::string cipher_pref;   // empty = chacha20-poly1305 first, no CBC (kDefaultCiphers)
  std::string mac_pref;      // empty = hmac-sha2 only (kDefaultMacs)
  std::string sign_pref;     // RSA user-key signatures; empty = rsa-sha2-512,rsa-sha2-256
  bool pty = false;
  std::string term_type = "xterm-256color";
  std::uint32_t cols = 80;
  std::uint32_t rows = 24;
  std::vector<std::pair<std::string, std::string>> env;
  std::string command;  // exec when not empty, else shell
  // Tunnel mode (jump hosts): when not empty, the channel is a direct-tcpip channel to
  // direct_host:direct_port instead of a session (no env, pty or shell); its data is the wire of
  // the next SSH session, which the host runs in a second engine.
  std::string direct_host;
  std::uint32_t direct_port = 0;
  std::uint32_t keepalive_s = 0;
  std::size_t out_bound = 256 * 1024;       // outbound queue: step() pauses libssh2 above it
  std::size_t in_cap = 16 * 1024 * 1024;    // inbound queue: push_input() refuses beyond it
  std::size_t app_high_water = 512 * 1024;  // delivered, unconsumed output
  // The SSH channel's receive window (what sshd may send ahead of our reads): every byte of it
  // is in flight ahead of a keystroke's echo, so an interactive terminal wants it small.
  std::uint32_t channel_window = 2 * 1024 * 1024;  // LIBSSH2_CHANNEL_WINDOW_DEFAULT
  std::size_t write_cap = 1024 * 1024;             // application input waiting for the SSH window
};

/// Why the engine closed. `none` is a normal end (remote exit, local close).
enum class CloseKind : std::uint8_t {
  none,
  hostkey_rejected,
  auth_failed,
  auth_cancelled,
  key_error,
  channel_failed,
  transport_closed,
  ssh_error,
  buffer_full,
  algorithm_mismatch,  // the key exchange found no common algorithm of one kind
};
const char* to_string(CloseKind k);

namespace event {
struct StateChanged {
  EngineState from;
  EngineState to;
};
struct KexDone {
  std::string kex, hostkey, cipher_cs, cipher_sc, mac_cs, mac_sc;
};
struct HostKey {
  std::string key_type;     // first string of the key blob, e.g. ssh-ed25519
  std::string algorithm;    // negotiated host key algorithm, e.g. rsa-sha2-512
  std::string fingerprint;  // SHA256:<base64 without padding>
  std::string blob;         // the raw public key blob
};
struct AuthMethods {
  std::string methods;  // comma separated, as the server listed them
};
struct AuthResult {
  std::string method;
  bool ok = false;
  int code = 0;
  std::string message;
};
struct KbdPrompt {
  std::string text;
  bool echo = false;
};
struct KbdPrompts {
  std::string name;
  std::string instruction;
  std::vector<KbdPrompt> prompts;
};
/// security_key: sign `data` (libssh2's to-be-signed bytes) and answer with sign_result().
struct SignRequest {
  std::vector<std::uint8_t> data;
};
struct Ready {};
struct Data {
  int stream = 0;  // 0 stdout, 1 stderr
  std::vector<std::uint8_t> bytes;
};
struct Exit {
  std::optional<int> code;
  std::string signal;
  std::string message;
};
struct Diagnostic {
  std::string code;
  std::string detail;
};
struct Closed {
  CloseKind kind = CloseKind::none;
  int code = 0;  // libssh2 error code (0 when none)
  std::string message;
  std::string methods;  // auth_failed: the methods the server allowed
  // algorithm_mismatch: the kind (kex, hostkey, cipher, mac) and both sides' lists of it
  std::string mismatch;
  std::string client_offer;
  std::string server_offer;
};
}  // namespace event

using Event = std::variant<event::StateChanged, event::KexDone, event::HostKey, event::AuthMethods,
                           event::AuthResult, event::KbdPrompts, event::SignRequest, event::Ready,
                           event::Data, event::Exit, event::Diagnostic, event::Closed>;

class SshEngine {
 public:
  explicit SshEngine(EngineConfig config);
  ~SshEngine();
  SshEngine(const SshEngine&) = delete;
  SshEngine& operator=(const SshEngine&) = delete;
  SshEngine(SshEngine&&) = delete;
  SshEngine& operator=(SshEngine&&) = delete;

  [[nodiscard]] EngineState state() const { return state_; }

  // ---- transport side ----
  /// Appends inbound bytes; returns false (and accepts nothing) when they exceed in_cap.
  bool push_input(const std::uint8_t* p, std::size_t n);
  /// Bytes libssh2 took out of the inbound queue since the last call (grant credit for them).
  std::size_t take_input_consumed();
  /// The transport is gone: the next step processes what was received and then, unless the
  /// session ended by itself (Exit, Closed none), fails with transport_closed.
  void transport_closed();
  [[nodiscard]] std::size_t output_bytes() const { return out_.size(); }
  /// Removes up to max outbound bytes into out.
  std::size_t take_output(std::uint8_t* out, std::size_t max);
  [[nodiscard]] std::uint64_t bytes_sent() const { return bytes_sent_; }
  [[nodiscard]] std::uint64_t bytes_received() const { return bytes_received_; }

  // ---- driving ----
  /// Runs the state machine until it would block. `now_ms` is the host's monotonic clock.
  void step(double now_ms);
  /// Next time step() must run for keepalives (host clock), if any.
  [[nodiscard]] std::optional<double> next_timeout() const;
  std::optional<Event> poll_event();

  // ---- application side ----
  void host_key_decision(bool accept);
  /// Answers for the last KbdPrompts (same order); std::nullopt cancels the authentication.
  void kbd_answers(std::optional<std::vector<std::string>> answers);
  /// The signature for the last SignRequest: a whole SSH signature blob (for a WebAuthn
  /// assertion the webauthn-sk-ecdsa-sha2-nistp256@openssh.com blob, at most 64 KiB);
  /// std::nullopt cancels the authentication (Closed auth_cancelled). Ignored outside auth_sign.
  void sign_result(std::optional<std::vector<std::uint8_t>> signature);
  /// Queues input for the remote process; returns how many bytes fit (write_cap bound).
  std::size_t write(const std::uint8_t* p, std::size_t n);
  [[nodiscard]] std::size_t write_room() const;
  [[nodiscard]] std::size_t write_queued() const { return write_q_.size(); }
  void consume(std::size_t n);
  [[nodiscard]] std::size_t unconsumed() const { return unconsumed_; }
  void resize(std::uint32_t cols, std::uint32_t rows);
  /// Sends a signal request (name without SIG, e.g. TERM). False when the name is invalid.
  bool signal(const std::string& name);
  void send_eof();
  /// Closes the channel and disconnects (normal end, Closed{none}).
  void close();

  // ---- called from libssh2 callbacks ----
  long on_send(const void* buffer, std::size_t length);
  long on_recv(void* buffer, std::size_t length);
  void on_kbd_prompts(const char* name, int name_len, const char* instruction, int instruction_len,
                      int num_prompts, const void* prompts, void* responses);
  /// libssh2's publickey sign callback (security_key): the blob when sign_result() gave it for
  /// this data, else a SignRequest and EAGAIN. The blob is malloc'ed (libssh2 frees it).
  int on_sign(unsigned char** sig, std::size_t* sig_len, const unsigned char* data,
              std::size_t data_len);

 private:
  enum class Progress : std::uint8_t { again, blocked };

  Progress advance();
  Progress do_handshake();
  Progress do_auth_list();
  Progress do_auth_try();
  Progress do_channel_open();
  Progress do_direct_open();  // tunnel mode (direct_host)
  Progress do_channel_env();
  Progress do_channel_pty();
  Progress do_channel_start();
  Progress do_running();
  Progress do_draining();
  Progress do_closing();
  bool read_stream(int stream, bool* progressed, bool* eof_seen);
  void maybe_keepalive();

  void set_state(EngineState s);
  void fail(CloseKind kind, int code, std::string message, std::string methods = {});
  /// The handshake failed: algorithm_mismatch when the server's offer shows why, else `kind`.
  void fail_handshake(CloseKind kind, int code);
  void finish_closed(event::Closed closed);
  void release();
  [[nodiscard]] int last_errno() const;
  [[nodiscard]] std::string last_error() const;
  [[nodiscard]] bool method_allowed(AuthKind k) const;

  EngineConfig cfg_;
  _LIBSSH2_SESSION* session_ = nullptr;
  _LIBSSH2_CHANNEL* channel_ = nullptr;
  EngineState state_ = EngineState::handshake;
  std::deque<Event> events_;

  ByteQueue in_;
  ByteQueue out_;
  ByteQueue write_q_;
  std::vector<std::uint8_t> read_buf_;  // libssh2_channel_read_ex target (read_stream)
  std::size_t in_consumed_ = 0;
  KexInitTap kex_tap_;           // the server's first KEXINIT (handshake only)
  ClientAlgorithms algorithms_;  // the lists given to libssh2, for find_mismatch()
  bool kex_refused_ = false;     // the server's KEXINIT has no kex in common (on_recv)
  bool transport_eof_ = false;
  bool released_ = false;  // release() ran: every read fails, so libssh2 frees without waiting
  bool discard_output_ = false;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t bytes_received_ = 0;

  std::optional<bool> hostkey_accept_;
  std::string methods_;
  std::size_t auth_index_ = 0;
  int auth_last_code_ = 0;
  std::string auth_last_message_;
  bool auth_key_error_ = false;
  // keyboard-interactive: answers cached by prompt text (see docs/ssh-in-browser.md)
  std::map<std::string, std::string> kbd_cache_;
  event::KbdPrompts kbd_pending_;
  bool auth_attempt_active_ = false;
  bool kbd_missing_ = false;
  bool kbd_answered_ = false;
  bool kbd_cancelled_ = false;
  int kbd_rounds_ = 0;
  // security_key: the data of the pending SignRequest and its answer
  void* sign_self_ = this;  // libssh2 hands the callback a pointer to this pointer
  std::vector<std::uint8_t> sign_data_;
  std::optional<std::vector<std::uint8_t>> sign_blob_;
  bool sign_requested_ = false;
  bool sign_cancelled_ = false;

  std::size_t env_index_ = 0;
  std::size_t unconsumed_ = 0;
  std::optional<std::pair<std::uint32_t, std::uint32_t>> resize_;
  std::deque<std::string> signals_;
  bool eof_requested_ = false;
  bool eof_sent_ = false;
  bool close_requested_ = false;
  bool channel_closed_ = false;
  bool disconnect_sent_ = false;
  std::optional<event::Closed> close_result_;

  double now_ms_ = 0;
  std::optional<double> keepalive_at_;
  std::optional<double> keepalive_sent_at_;
};

/// Number of SshEngine instances alive (the leak check of the JS tests).
int live_engines();

/// What this build of libssh2 can negotiate, comma separated, for `kind` kex | hostkey | cipher |
/// mac (libssh2_session_supported_algs; without the kex extension markers). Empty when unknown.
std::string supported_algorithms(const std::string& kind);

}  // namespace mana::ssh
