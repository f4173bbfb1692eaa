// SPDX-License-Identifier: Apache-2.0
// The fuzz seeds recorded from real sshd sessions replay past the key exchange: with the
// recording's deterministic randomness (tests/fuzz/ssh_engine_replay.hpp) the engine verifies
// the recorded server's signature, decrypts its packets and runs the session to its exit. If this
// fails after a libssh2 or OpenSSL change, re-record the seeds: MANA_SSH_ENGINE_RECORD=<dir>
// mana_ssh_engine_tests, then <dir>/<name>.bin -> corpus/fuzz_ssh_engine/recorded-<name>.
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "fuzz/ssh_engine_replay.hpp"
#include "ssh_engine.hpp"

namespace {

using mana::ssh::CloseKind;
using mana::ssh::Event;
using mana::ssh::SshEngine;
namespace event = mana::ssh::event;

std::vector<std::uint8_t> read_seed(const std::string& name) {
  const std::string path =
      std::string(MANA_SOURCE_DIR) + "/tests/fuzz/corpus/fuzz_ssh_engine/" + name;
  std::ifstream f(path, std::ios::binary);
  INFO(path);
  REQUIRE(f.good());
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

struct Replayed {
  std::string out;
  bool ready = false;
  std::optional<event::Exit> exit;
  std::optional<event::Closed> closed;
};

// Fed as the fuzz target feeds an input (feed_as_server), with its configuration and randomness.
Replayed replay(const std::vector<std::uint8_t>& seed) {
  mana::ssh::test::reset_deterministic_rand();
  SshEngine e(mana::ssh::test::replay_config());
  Replayed r;
  const auto result =
      mana::ssh::test::feed_as_server(e, seed.data(), seed.size(), [&](const Event& ev) {
        if (std::holds_alternative<event::HostKey>(ev)) {
          e.host_key_decision(true);
        } else if (const auto* d = std::get_if<event::Data>(&ev)) {
          if (d->stream == 0) r.out.append(d->bytes.begin(), d->bytes.end());
          e.consume(d->bytes.size());
        } else if (std::holds_alternative<event::Ready>(ev)) {
          r.ready = true;
        } else if (const auto* x = std::get_if<event::Exit>(&ev)) {
          r.exit = *x;
        } else if (const auto* c = std::get_if<event::Closed>(&ev)) {
          r.closed = *c;
        }
      });
  REQUIRE_FALSE(result.input_refused);
  return r;
}

}  // namespace

TEST_CASE("ssh engine: a recorded password session replays to its exit (fuzz seed depth)",
          "[ssh-engine]") {
  const Replayed r = replay(read_seed("recorded-password_exec"));
  INFO("closed: " << (r.closed ? to_string(r.closed->kind) : "no") << " code "
                  << (r.closed ? r.closed->code : 0) << " " << (r.closed ? r.closed->message : ""));
  CHECK(r.ready);
  CHECK(r.out == "mana-42\n");
  REQUIRE(r.exit);
  CHECK(r.exit->code == 0);
}

TEST_CASE("ssh engine: a recorded key-login session decrypts past the key exchange",
          "[ssh-engine]") {
  // Recorded with publickey auth, replayed with replay_config()'s password auth: the server's
  // encrypted replies decrypt (the same keys) and its authentication answers are parsed, which
  // do not fit a password login: a typed auth_failed (a packet that did not decrypt would end
  // in ssh_error, a signature that did not verify before authentication).
  for (const char* name :
       {"recorded-key_exec_status", "recorded-handshake_exec_true", "recorded-pty_shell"}) {
    INFO(name);
    const Replayed r = replay(read_seed(name));
    REQUIRE(r.closed);
    INFO(r.closed->message);
    CHECK(r.closed->kind == CloseKind::auth_failed);
  }
}

TEST_CASE("ssh engine: a packet whose MAC does not verify closes the session (no read loop)",
          "[ssh-engine]") {
  // recorded-password_exec with one byte changed inside the encrypted CHANNEL_OPEN_CONFIRMATION
  // (found by fuzz_ssh_engine): libssh2 1.11.1 read chacha20-poly1305's failed tag check as a
  // packet and read the same packet again forever, allocating each time. With our patch
  // (scripts/patches/libssh2/0002-chachapoly-mac-failure-is-an-error.patch) it is an error.
  const Replayed r = replay(read_seed("chachapoly-mac-failure-loop"));
  REQUIRE(r.closed);
  INFO(r.closed->message);
  CHECK(r.closed->kind == CloseKind::channel_failed);
  CHECK(r.closed->code == -12);  // LIBSSH2_ERROR_DECRYPT
  CHECK_FALSE(r.ready);
}

TEST_CASE("ssh engine: a server KEXINIT naming the client's kex marker is refused, not called",
          "[ssh-engine]") {
  // Banner lines before the version line, then a KEXINIT listing kex-strict-c-v00@openssh.com
  // (found by fuzz_ssh_engine): libssh2 1.11.1 agreed on the marker and called its NULL
  // exchange_keys. With our patch (scripts/patches/libssh2/0003-kex-markers-are-not-key-
  // exchanges.patch) the marker is never agreed on: a typed close, no crash.
  const Replayed r = replay(read_seed("kex-marker-after-banner-lines"));
  REQUIRE(r.closed);
  INFO(r.closed->message);
  CHECK(r.closed->kind != CloseKind::none);
  CHECK_FALSE(r.ready);
}
