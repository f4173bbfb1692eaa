// SshEngine: see ssh_engine.hpp for the contract and invariants.
#include "ssh_engine.hpp"

#include <libssh2.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

// libssh2's internal packet lookup (src/packet.c, a global symbol of the static library): used
// only to take the replies to our own keepalive requests out of libssh2's packet list, which
// would otherwise keep every reply (libssh2 never asks for them), and to see that they arrived.
extern "C" int _libssh2_packet_ask(LIBSSH2_SESSION* session, unsigned char packet_type,
                                   unsigned char** data, size_t* data_len, int match_ofs,
                                   const unsigned char* match_buf, size_t match_len);

namespace mana::ssh {
namespace {

constexpr libssh2_socket_t kDummySocket = 3;        // never used: the callbacks do the I/O
constexpr std::size_t kOutputHardCap = 256 * 1024;  // above out_bound (see invariant 2)
// One Data event carries up to kReadChunk bytes: libssh2_channel_read_ex joins the queued SSH
// packets into the caller's buffer, and every event costs a JS object, a Uint8Array and a round
// through the session's pump, so fewer, larger events are cheaper (bench/browser).
constexpr std::size_t kReadChunk = 128 * 1024;
constexpr std::size_t kWriteChunk = 32 * 1024;  // per libssh2_channel_write_ex call
constexpr int kMaxKbdRounds = 4;
constexpr unsigned char kMsgRequestSuccess = 81;
constexpr unsigned char kMsgRequestFailure = 82;

int live_count = 0;
bool libssh2_ready = false;

constexpr const char* kDefaultHostkeys =
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
    "rsa-sha2-512,rsa-sha2-256";
// The two extension markers must stay in an explicit list: libssh2 sends the preference string
// verbatim, and without them there is no EXT_INFO (rsa-sha2 user keys) and no strict KEX.
constexpr const char* kDefaultKex =
    "curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,"
    "ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
    "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
constexpr const char* kKexExtensions = "ext-info-c,kex-strict-c-v00@openssh.com";
constexpr const char* kDefaultCiphers =
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,"
    "aes192-ctr,aes128-ctr";

// The libssh2 callbacks: `abstract` points at the session's abstract pointer (the engine).
SshEngine* engine_of(void** abstract) {
  return static_cast<SshEngine*>(*abstract);
}

ssize_t send_cb(libssh2_socket_t /*socket*/, const void* buffer, size_t length, int /*flags*/,
                void** abstract) {
  return engine_of(abstract)->on_send(buffer, length);
}

ssize_t recv_cb(libssh2_socket_t /*socket*/, void* buffer, size_t length, int /*flags*/,
                void** abstract) {
  return engine_of(abstract)->on_recv(buffer, length);
}

void kbd_cb(const char* name, int name_len, const char* instruction, int instruction_len,
            int num_prompts, const LIBSSH2_USERAUTH_KBDINT_PROMPT* prompts,
            LIBSSH2_USERAUTH_KBDINT_RESPONSE* responses, void** abstract) {
  engine_of(abstract)->on_kbd_prompts(name, name_len, instruction, instruction_len, num_prompts,
                                      prompts, responses);
}

std::string base64_no_pad(const unsigned char* p, std::size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < n; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == n) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (i + 2 == n) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

// The key type: the first SSH string of a public key blob.
std::string blob_key_type(const char* blob, std::size_t len) {
  if (blob == nullptr || len < 4) return {};
  const auto* u = reinterpret_cast<const unsigned char*>(blob);
  const std::size_t n = (std::size_t{u[0]} << 24) | (std::size_t{u[1]} << 16) |
                        (std::size_t{u[2]} << 8) | std::size_t{u[3]};
  if (n > len - 4 || n > 64) return {};
  return {blob + 4, n};
}

const char* method_or_empty(LIBSSH2_SESSION* s, int type) {
  const char* m = libssh2_session_methods(s, type);
  return m != nullptr ? m : "";
}

bool list_contains(std::string_view list, std::string_view item) {
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t end = std::min(list.find(',', pos), list.size());
    if (list.substr(pos, end - pos) == item) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

// ---- ByteQueue ---------------------------------------------------------------------------------

void ByteQueue::append(const std::uint8_t* p, std::size_t n) {
  if (n == 0) return;
  if (head_ > 0 && head_ >= data_.size() / 2) {
    data_.erase(data_.begin(), data_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  data_.insert(data_.end(), p, p + n);
}

std::size_t ByteQueue::read(std::uint8_t* out, std::size_t n) {
  const std::size_t k = std::min(n, size());
  if (k > 0) std::memcpy(out, front(), k);
  drop(k);
  return k;
}

void ByteQueue::drop(std::size_t n) {
  head_ += std::min(n, size());
  if (head_ == data_.size()) clear();
}

void ByteQueue::clear() {
  data_.clear();
  head_ = 0;
  if (data_.capacity() > 1024 * 1024) data_.shrink_to_fit();
}

// ---- names
// ---------------------------------------------------------------------------------------

const char* to_string(EngineState s) {
  switch (s) {
    case EngineState::handshake:
      return "handshake";
    case EngineState::hostkey_check:
      return "hostkey_check";
    case EngineState::auth_list:
      return "auth_list";
    case EngineState::auth_try:
      return "auth_try";
    case EngineState::auth_prompt:
      return "auth_prompt";
    case EngineState::channel_open:
      return "channel_open";
    case EngineState::channel_env:
      return "channel_env";
    case EngineState::channel_pty:
      return "channel_pty";
    case EngineState::channel_start:
      return "channel_start";
    case EngineState::running:
      return "running";
    case EngineState::draining:
      return "draining";
    case EngineState::closing:
      return "closing";
    case EngineState::closed:
      return "closed";
  }
  return "unknown";
}

const char* to_string(AuthKind k) {
  switch (k) {
    case AuthKind::password:
      return "password";
    case AuthKind::publickey:
      return "publickey";
    case AuthKind::keyboard_interactive:
      return "keyboard-interactive";
  }
  return "unknown";
}

const char* to_string(CloseKind k) {
  switch (k) {
    case CloseKind::none:
      return "none";
    case CloseKind::hostkey_rejected:
      return "hostkey_rejected";
    case CloseKind::auth_failed:
      return "auth_failed";
    case CloseKind::auth_cancelled:
      return "auth_cancelled";
    case CloseKind::key_error:
      return "key_error";
    case CloseKind::channel_failed:
      return "channel_failed";
    case CloseKind::transport_closed:
      return "transport_closed";
    case CloseKind::ssh_error:
      return "ssh_error";
    case CloseKind::buffer_full:
      return "buffer_full";
  }
  return "unknown";
}

int live_engines() {
  return live_count;
}

// ---- life cycle
// ----------------------------------------------------------------------------------

SshEngine::SshEngine(EngineConfig config) : cfg_(std::move(config)) {
  ++live_count;
  if (!libssh2_ready) {
    if (libssh2_init(0) != 0) {
      fail(CloseKind::ssh_error, -1, "libssh2_init failed");
      return;
    }
    libssh2_ready = true;
  }
  session_ = libssh2_session_init_ex(nullptr, nullptr, nullptr, this);
  if (session_ == nullptr) {
    fail(CloseKind::ssh_error, LIBSSH2_ERROR_ALLOC, "libssh2_session_init failed");
    return;
  }
  libssh2_session_callback_set2(session_, LIBSSH2_CALLBACK_SEND,
                                reinterpret_cast<libssh2_cb_generic*>(&send_cb));
  libssh2_session_callback_set2(session_, LIBSSH2_CALLBACK_RECV,
                                reinterpret_cast<libssh2_cb_generic*>(&recv_cb));
  libssh2_session_set_blocking(session_, 0);

  const std::string kex =
      (cfg_.kex_pref.empty() ? std::string(kDefaultKex) : cfg_.kex_pref) + "," + kKexExtensions;
  const std::string& hostkeys =
      cfg_.hostkey_pref.empty() ? std::string(kDefaultHostkeys) : cfg_.hostkey_pref;
  const std::string& ciphers =
      cfg_.cipher_pref.empty() ? std::string(kDefaultCiphers) : cfg_.cipher_pref;
  struct Pref {
    int type;
    const std::string* list;
  };
  const std::array<Pref, 4> prefs{{{LIBSSH2_METHOD_KEX, &kex},
                                   {LIBSSH2_METHOD_HOSTKEY, &hostkeys},
                                   {LIBSSH2_METHOD_CRYPT_CS, &ciphers},
                                   {LIBSSH2_METHOD_CRYPT_SC, &ciphers}}};
  for (const Pref& p : prefs) {
    if (libssh2_session_method_pref(session_, p.type, p.list->c_str()) != 0) {
      fail(CloseKind::ssh_error, last_errno(), "method preference refused: " + *p.list);
      return;
    }
  }
  if (!cfg_.mac_pref.empty()) {
    for (int type : {LIBSSH2_METHOD_MAC_CS, LIBSSH2_METHOD_MAC_SC}) {
      if (libssh2_session_method_pref(session_, type, cfg_.mac_pref.c_str()) != 0) {
        fail(CloseKind::ssh_error, last_errno(), "MAC preference refused: " + cfg_.mac_pref);
        return;
      }
    }
  }
  if (cfg_.keepalive_s > 0) libssh2_keepalive_config(session_, 1, cfg_.keepalive_s);
}

SshEngine::~SshEngine() {
  release();
  --live_count;
}

void SshEngine::release() {
  // Tear down without I/O: whatever libssh2 still wants to send is dropped, reads see the end.
  discard_output_ = true;
  transport_eof_ = true;
  if (channel_ != nullptr) {
    for (int i = 0; i < 16 && libssh2_channel_free(channel_) == LIBSSH2_ERROR_EAGAIN; ++i) {
    }
    channel_ = nullptr;
  }
  if (session_ != nullptr) {
    for (int i = 0; i < 16 && libssh2_session_free(session_) == LIBSSH2_ERROR_EAGAIN; ++i) {
    }
    session_ = nullptr;
  }
  in_.clear();
  write_q_.clear();
}

// ---- transport side
// ------------------------------------------------------------------------------

bool SshEngine::push_input(const std::uint8_t* p, std::size_t n) {
  if (state_ == EngineState::closed) return true;  // ignored: the engine is inert
  if (n > cfg_.in_cap - std::min(cfg_.in_cap, in_.size())) {
    fail(CloseKind::buffer_full, 0, "inbound queue bound exceeded");
    return false;
  }
  in_.append(p, n);
  bytes_received_ += n;
  return true;
}

std::size_t SshEngine::take_input_consumed() {
  return std::exchange(in_consumed_, 0);
}

void SshEngine::transport_closed() {
  transport_eof_ = true;
}

std::size_t SshEngine::take_output(std::uint8_t* out, std::size_t max) {
  return out_.read(out, max);
}

long SshEngine::on_send(const void* buffer, std::size_t length) {
  if (discard_output_) return static_cast<long>(length);
  if (out_.size() >= cfg_.out_bound + kOutputHardCap) return -EAGAIN;
  out_.append(static_cast<const std::uint8_t*>(buffer), length);
  bytes_sent_ += length;
  return static_cast<long>(length);
}

long SshEngine::on_recv(void* buffer, std::size_t length) {
  if (in_.empty()) return transport_eof_ ? 0 : -EAGAIN;
  const std::size_t n = in_.read(static_cast<std::uint8_t*>(buffer), length);
  in_consumed_ += n;
  return static_cast<long>(n);
}

// ---- driving
// -------------------------------------------------------------------------------------

void SshEngine::step(double now_ms) {
  now_ms_ = now_ms;
  for (int guard = 0; guard < 256; ++guard) {
    if (state_ == EngineState::closed) return;
    if (out_.size() >= cfg_.out_bound) return;  // the host drains first (invariant 2)
    if (advance() == Progress::blocked) break;
  }
  if (state_ == EngineState::closed) return;
  if (transport_eof_ && in_.empty() && state_ != EngineState::closed) {
    fail(CloseKind::transport_closed, LIBSSH2_ERROR_SOCKET_DISCONNECT,
         "the transport closed before the SSH session ended");
  }
}

std::optional<double> SshEngine::next_timeout() const {
  if (state_ == EngineState::closed) return std::nullopt;
  return keepalive_at_;
}

std::optional<Event> SshEngine::poll_event() {
  if (events_.empty()) return std::nullopt;
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

SshEngine::Progress SshEngine::advance() {
  switch (state_) {
    case EngineState::handshake:
      return do_handshake();
    case EngineState::hostkey_check:
      if (!hostkey_accept_) return Progress::blocked;
      if (!*hostkey_accept_) {
        // Invariant 5: no DISCONNECT either; the host closes the transport.
        fail(CloseKind::hostkey_rejected, 0, "host key rejected");
        return Progress::blocked;
      }
      set_state(EngineState::auth_list);
      return Progress::again;
    case EngineState::auth_list:
      return do_auth_list();
    case EngineState::auth_try:
      return do_auth_try();
    case EngineState::auth_prompt:
      if (kbd_cancelled_) {
        fail(CloseKind::auth_cancelled, 0, "keyboard-interactive cancelled", methods_);
        return Progress::blocked;
      }
      if (!kbd_answered_) return Progress::blocked;
      kbd_answered_ = false;
      set_state(EngineState::auth_try);
      return Progress::again;
    case EngineState::channel_open:
      return do_channel_open();
    case EngineState::channel_env:
      return do_channel_env();
    case EngineState::channel_pty:
      return do_channel_pty();
    case EngineState::channel_start:
      return do_channel_start();
    case EngineState::running:
      return do_running();
    case EngineState::draining:
      return do_draining();
    case EngineState::closing:
      return do_closing();
    case EngineState::closed:
      return Progress::blocked;
  }
  return Progress::blocked;
}

SshEngine::Progress SshEngine::do_handshake() {
  const int rc = libssh2_session_handshake(session_, kDummySocket);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
  if (rc != 0) {
    fail(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, rc, last_error());
    return Progress::blocked;
  }
  events_.emplace_back(event::KexDone{
      method_or_empty(session_, LIBSSH2_METHOD_KEX),
      method_or_empty(session_, LIBSSH2_METHOD_HOSTKEY),
      method_or_empty(session_, LIBSSH2_METHOD_CRYPT_CS),
      method_or_empty(session_, LIBSSH2_METHOD_CRYPT_SC),
      method_or_empty(session_, LIBSSH2_METHOD_MAC_CS),
      method_or_empty(session_, LIBSSH2_METHOD_MAC_SC),
  });
  std::size_t len = 0;
  int type = 0;
  const char* blob = libssh2_session_hostkey(session_, &len, &type);
  const char* hash = libssh2_hostkey_hash(session_, LIBSSH2_HOSTKEY_HASH_SHA256);
  if (blob == nullptr || hash == nullptr) {
    fail(CloseKind::ssh_error, last_errno(), "no host key after the key exchange");
    return Progress::blocked;
  }
  event::HostKey hk;
  hk.key_type = blob_key_type(blob, len);
  hk.algorithm = method_or_empty(session_, LIBSSH2_METHOD_HOSTKEY);
  hk.fingerprint = "SHA256:" + base64_no_pad(reinterpret_cast<const unsigned char*>(hash), 32);
  hk.blob.assign(blob, len);
  events_.emplace_back(std::move(hk));
  set_state(EngineState::hostkey_check);
  return Progress::again;
}

bool SshEngine::method_allowed(AuthKind k) const {
  return list_contains(methods_, to_string(k));
}

SshEngine::Progress SshEngine::do_auth_list() {
  const char* list = libssh2_userauth_list(session_, cfg_.username.data(),
                                           static_cast<unsigned>(cfg_.username.size()));
  if (list == nullptr) {
    if (libssh2_userauth_authenticated(session_) != 0) {
      events_.emplace_back(event::AuthResult{"none", true, 0, {}});
      set_state(EngineState::channel_open);
      return Progress::again;
    }
    const int err = last_errno();
    if (err == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
    fail(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, err, last_error());
    return Progress::blocked;
  }
  methods_ = list;
  events_.emplace_back(event::AuthMethods{methods_});
  auth_index_ = 0;
  while (auth_index_ < cfg_.auth.size() && !method_allowed(cfg_.auth[auth_index_].kind)) {
    ++auth_index_;
  }
  if (auth_index_ >= cfg_.auth.size()) {
    fail(CloseKind::auth_failed, LIBSSH2_ERROR_AUTHENTICATION_FAILED,
         "the server offers none of the configured methods", methods_);
    return Progress::blocked;
  }
  set_state(EngineState::auth_try);
  return Progress::again;
}

SshEngine::Progress SshEngine::do_auth_try() {
  const AuthMethod& m = cfg_.auth[auth_index_];
  const auto ulen = static_cast<unsigned>(cfg_.username.size());
  int rc = 0;
  switch (m.kind) {
    case AuthKind::password:
      rc = libssh2_userauth_password_ex(session_, cfg_.username.data(), ulen, m.secret.data(),
                                        static_cast<unsigned>(m.secret.size()), nullptr);
      break;
    case AuthKind::publickey:
      rc = libssh2_userauth_publickey_frommemory(
          session_, cfg_.username.data(), cfg_.username.size(), nullptr, 0, m.secret.data(),
          m.secret.size(), m.passphrase.empty() ? nullptr : m.passphrase.c_str());
      break;
    case AuthKind::keyboard_interactive:
      // Reset once per attempt (this runs again after every EAGAIN of the same attempt).
      if (!auth_attempt_active_) kbd_missing_ = false;
      rc = libssh2_userauth_keyboard_interactive_ex(session_, cfg_.username.data(), ulen, &kbd_cb);
      break;
  }
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    auth_attempt_active_ = true;
    return Progress::blocked;
  }
  auth_attempt_active_ = false;
  const char* name = to_string(m.kind);
  if (rc == 0) {
    events_.emplace_back(event::AuthResult{name, true, 0, {}});
    set_state(EngineState::channel_open);
    return Progress::again;
  }
  const std::string message = last_error();
  const bool auth_refused = rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED ||
                            rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
                            rc == LIBSSH2_ERROR_PASSWORD_EXPIRED || rc == LIBSSH2_ERROR_FILE ||
                            rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED;
  if (!auth_refused) {
    fail(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, rc, message);
    return Progress::blocked;
  }
  if (m.kind == AuthKind::keyboard_interactive && kbd_missing_ && kbd_rounds_ < kMaxKbdRounds) {
    // The prompts were answered with empty strings (the callback cannot wait): ask the host,
    // then repeat the method with the answers cached by prompt text.
    ++kbd_rounds_;
    events_.emplace_back(event::AuthResult{name, false, rc, "answers needed"});
    events_.emplace_back(kbd_pending_);
    set_state(EngineState::auth_prompt);
    return Progress::blocked;
  }
  events_.emplace_back(event::AuthResult{name, false, rc, message});
  auth_last_code_ = rc;
  auth_last_message_ = message;
  if (rc == LIBSSH2_ERROR_FILE) auth_key_error_ = true;
  ++auth_index_;
  while (auth_index_ < cfg_.auth.size() && !method_allowed(cfg_.auth[auth_index_].kind)) {
    ++auth_index_;
  }
  if (auth_index_ >= cfg_.auth.size()) {
    // Only a key that could not be used at all (and nothing else tried) is a key error.
    const bool only_key = auth_key_error_ && rc == LIBSSH2_ERROR_FILE;
    fail(only_key ? CloseKind::key_error : CloseKind::auth_failed, rc, message, methods_);
    return Progress::blocked;
  }
  return Progress::again;
}

void SshEngine::on_kbd_prompts(const char* name, int name_len, const char* instruction,
                               int instruction_len, int num_prompts, const void* prompts_in,
                               void* responses_out) {
  const auto* prompts = static_cast<const LIBSSH2_USERAUTH_KBDINT_PROMPT*>(prompts_in);
  auto* responses = static_cast<LIBSSH2_USERAUTH_KBDINT_RESPONSE*>(responses_out);
  event::KbdPrompts round;
  if (name != nullptr && name_len > 0) round.name.assign(name, static_cast<std::size_t>(name_len));
  if (instruction != nullptr && instruction_len > 0) {
    round.instruction.assign(instruction, static_cast<std::size_t>(instruction_len));
  }
  bool missing = false;
  for (int i = 0; i < num_prompts; ++i) {
    event::KbdPrompt p;
    if (prompts[i].text != nullptr) {
      p.text.assign(reinterpret_cast<const char*>(prompts[i].text), prompts[i].length);
    }
    p.echo = prompts[i].echo != 0;
    const auto it = kbd_cache_.find(p.text);
    // libssh2 frees the answers with the session's allocator (the default: free).
    const std::string answer = it != kbd_cache_.end() ? it->second : std::string();
    if (it == kbd_cache_.end()) missing = true;
    auto* text = static_cast<char*>(std::malloc(answer.size() + 1));
    if (text != nullptr) {
      std::memcpy(text, answer.data(), answer.size());
      text[answer.size()] = '\0';
      responses[i].text = text;
      responses[i].length = static_cast<unsigned>(answer.size());
    }
    round.prompts.push_back(std::move(p));
  }
  if (missing) {
    kbd_missing_ = true;
    kbd_pending_ = std::move(round);
  }
}

void SshEngine::kbd_answers(std::optional<std::vector<std::string>> answers) {
  if (state_ != EngineState::auth_prompt) return;
  if (!answers || answers->size() != kbd_pending_.prompts.size()) {
    kbd_cancelled_ = true;
    return;
  }
  for (std::size_t i = 0; i < answers->size(); ++i) {
    kbd_cache_[kbd_pending_.prompts[i].text] = (*answers)[i];
  }
  kbd_answered_ = true;
}

void SshEngine::host_key_decision(bool accept) {
  if (state_ == EngineState::hostkey_check && !hostkey_accept_) hostkey_accept_ = accept;
}

SshEngine::Progress SshEngine::do_channel_open() {
  channel_ = libssh2_channel_open_ex(session_, "session", 7, LIBSSH2_CHANNEL_WINDOW_DEFAULT,
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

// ---- failures
// ------------------------------------------------------------------------------------

void SshEngine::set_state(EngineState s) {
  if (s == state_) return;
  events_.emplace_back(event::StateChanged{state_, s});
  state_ = s;
}

void SshEngine::fail(CloseKind kind, int code, std::string message, std::string methods) {
  if (state_ == EngineState::closed) return;
  // A polite DISCONNECT after authentication problems; nothing at all after a host key
  // rejection (invariant 5) or when the transport is gone.
  const bool polite = session_ != nullptr && kind != CloseKind::hostkey_rejected &&
                      kind != CloseKind::transport_closed && state_ > EngineState::hostkey_check &&
                      out_.size() < cfg_.out_bound;
  if (polite) {
    (void)libssh2_session_disconnect_ex(session_, SSH_DISCONNECT_BY_APPLICATION, message.c_str(),
                                        "");
  }
  finish_closed(event::Closed{kind, code, std::move(message), std::move(methods)});
}

void SshEngine::finish_closed(event::Closed closed) {
  if (state_ == EngineState::closed) return;
  // Free libssh2 first (no further I/O; what is queued in out_ stays for the host to send),
  // then report: the host may delete the engine on Closed.
  release();
  keepalive_at_.reset();
  set_state(EngineState::closed);
  events_.emplace_back(std::move(closed));
}

int SshEngine::last_errno() const {
  return session_ != nullptr ? libssh2_session_last_errno(session_) : 0;
}

std::string SshEngine::last_error() const {
  if (session_ == nullptr) return {};
  char* msg = nullptr;
  int len = 0;
  libssh2_session_last_error(session_, &msg, &len, 0);
  return msg != nullptr && len > 0 ? std::string(msg, static_cast<std::size_t>(len))
                                   : std::string();
}

}  // namespace mana::ssh
