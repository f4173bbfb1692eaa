// SshEngine, the states up to an authenticated session: the key exchange (handshake), the host
// key check, the method list and the authentication attempts, keyboard-interactive prompts
// included. See ssh_engine.hpp for the contract and invariants.
#include <libssh2.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "ssh_engine.hpp"
#include "ssh_kexinit.hpp"

namespace mana::ssh {
namespace {

constexpr libssh2_socket_t kDummySocket = 3;  // never used: the callbacks do the I/O
constexpr int kMaxKbdRounds = 4;

// The libssh2 callback: `abstract` points at the session's abstract pointer (the engine).
void kbd_cb(const char* name, int name_len, const char* instruction, int instruction_len,
            int num_prompts, const LIBSSH2_USERAUTH_KBDINT_PROMPT* prompts,
            LIBSSH2_USERAUTH_KBDINT_RESPONSE* responses, void** abstract) {
  static_cast<SshEngine*>(*abstract)->on_kbd_prompts(name, name_len, instruction, instruction_len,
                                                     num_prompts, prompts, responses);
}

// libssh2's publickey sign callback: `abstract` points at SshEngine::sign_self_.
int sign_cb(LIBSSH2_SESSION* /*session*/, unsigned char** sig, std::size_t* sig_len,
            const unsigned char* data, std::size_t data_len, void** abstract) {
  return static_cast<SshEngine*>(*abstract)->on_sign(sig, sig_len, data, data_len);
}

constexpr std::size_t kMaxSignatureBlob = 64 * 1024;

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

}  // namespace

SshEngine::Progress SshEngine::do_handshake() {
  const int rc = libssh2_session_handshake(session_, kDummySocket);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Progress::blocked;
  if (rc != 0) {
    fail_handshake(transport_eof_ ? CloseKind::transport_closed : CloseKind::ssh_error, rc);
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
  return list_contains(methods_, wire_method(k));
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
    case AuthKind::security_key:
      // libssh2_userauth_publickey (not _sk, which loops on EAGAIN and wants a key file): the
      // key blob's type selects libssh2's sk branch, which (with our patch) sends a webauthn
      // signature blob from the callback as it is.
      rc = libssh2_userauth_publickey(session_, cfg_.username.c_str(),
                                      reinterpret_cast<const unsigned char*>(m.secret.data()),
                                      m.secret.size(), &sign_cb, &sign_self_);
      break;
  }
  if (rc == LIBSSH2_ERROR_EAGAIN) {
    auth_attempt_active_ = true;
    if (m.kind == AuthKind::security_key && sign_requested_ && !sign_blob_) {
      set_state(EngineState::auth_sign);
    }
    return Progress::blocked;
  }
  auth_attempt_active_ = false;
  if (m.kind == AuthKind::security_key) {
    sign_requested_ = false;
    sign_blob_.reset();
    sign_data_.clear();
  }
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
                            rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED ||
                            // an RSA key, and the server accepts none of the signature
                            // algorithms allowed (e.g. only ssh-rsa, SHA-1, without `legacy`)
                            rc == LIBSSH2_ERROR_METHOD_NONE;
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

int SshEngine::on_sign(unsigned char** sig, std::size_t* sig_len, const unsigned char* data,
                       std::size_t data_len) {
  const bool same = sign_requested_ && sign_data_.size() == data_len &&
                    std::equal(sign_data_.begin(), sign_data_.end(), data);
  if (same && sign_blob_) {
    // libssh2 frees the signature with the session's allocator (the default: free).
    auto* out = static_cast<unsigned char*>(std::malloc(sign_blob_->size()));
    if (out == nullptr) return LIBSSH2_ERROR_ALLOC;
    std::memcpy(out, sign_blob_->data(), sign_blob_->size());
    *sig = out;
    *sig_len = sign_blob_->size();
    return 0;
  }
  if (same) return LIBSSH2_ERROR_EAGAIN;  // still waiting for sign_result()
  sign_requested_ = true;
  sign_blob_.reset();
  sign_data_.assign(data, data + data_len);
  events_.emplace_back(event::SignRequest{sign_data_});
  return LIBSSH2_ERROR_EAGAIN;
}

void SshEngine::sign_result(std::optional<std::vector<std::uint8_t>> signature) {
  if (state_ != EngineState::auth_sign) return;
  if (!signature || signature->empty() || signature->size() > kMaxSignatureBlob) {
    sign_cancelled_ = true;
    return;
  }
  sign_blob_ = std::move(signature);
}

void SshEngine::host_key_decision(bool accept) {
  if (state_ == EngineState::hostkey_check && !hostkey_accept_) hostkey_accept_ = accept;
}

}  // namespace mana::ssh
