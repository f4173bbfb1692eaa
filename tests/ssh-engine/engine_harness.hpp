// SPDX-License-Identifier: Apache-2.0
// Test harness of the native SSH engine (ssh-engine/): a real OpenSSH sshd started through the dev
// harness (`node tools/devkit/sshd.mjs --password --print-key`, one per test process, stopped at
// exit) and a loop that carries bytes between the sans-I/O engine and a loopback TCP socket.
//
// MANA_SSH_ENGINE_RECORD=<dir>: every session also writes the bytes the server sent (at most
// record_cap) to <dir>/<name>.bin, the seeds of tests/fuzz/fuzz_ssh_engine.cpp; such a session
// runs with the fuzzer's deterministic randomness (tests/fuzz/ssh_engine_replay.hpp).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ssh_engine.hpp"

namespace mana::ssh::test {

struct SshdInfo {
  int port = 0;
  std::string user;
  std::string password;
  std::string host_fingerprint;  // ed25519 host key, SHA256:<base64>
  std::string user_key;          // OpenSSH private key text (no passphrase)
  std::string dir;               // its folder: authorized_keys (read at each login), sshd.log
};

/// The process's sshd (started on first use). Fails the calling test when it cannot start.
const SshdInfo& sshd();

constexpr std::size_t record_cap = 64 * 1024;

/// One engine on one TCP connection to 127.0.0.1:port.
class Session {
 public:
  Session(EngineConfig config, int port, std::string record_name = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  Session(Session&&) = delete;
  Session& operator=(Session&&) = delete;

  /// The host key fingerprint accepted at the HostKey event (empty: reject every key).
  void accept_fingerprint(std::string fp) { accept_fp_ = std::move(fp); }
  /// Answers SignRequest events (security_key): the signature blob, or std::nullopt to cancel.
  /// Without it, a SignRequest is left unanswered.
  using Signer = std::function<std::optional<std::vector<std::uint8_t>>(
      const std::vector<std::uint8_t>& data)>;
  void sign_with(Signer signer) { signer_ = std::move(signer); }
  /// Runs the engine and the socket until done() or the engine closed or timeout_ms passed;
  /// returns done().
  bool run_until(const std::function<bool()>& done, double timeout_ms = 20000);
  bool run_until_closed(double timeout_ms = 20000) {
    return run_until([this] { return closed_.has_value(); }, timeout_ms);
  }
  void write(const std::string& text);

  SshEngine& engine() { return engine_; }
  [[nodiscard]] const std::vector<Event>& events() const { return events_; }
  [[nodiscard]] const std::string& out(int stream = 0) const { return out_[stream == 0 ? 0 : 1]; }
  [[nodiscard]] const std::optional<event::Exit>& exit() const { return exit_; }
  [[nodiscard]] const std::optional<event::Closed>& closed() const { return closed_; }
  [[nodiscard]] bool ready() const { return ready_; }
  [[nodiscard]] std::string describe() const;  // closed reason + stderr, for failure messages

 private:
  void flush_output();
  void handle(const Event& ev);

  SshEngine engine_;
  int fd_ = -1;
  std::string accept_fp_;
  Signer signer_;
  std::string record_name_;
  std::vector<std::uint8_t> recorded_;
  std::vector<Event> events_;
  std::string out_[2];
  std::optional<event::Exit> exit_;
  std::optional<event::Closed> closed_;
  bool ready_ = false;
};

}  // namespace mana::ssh::test
