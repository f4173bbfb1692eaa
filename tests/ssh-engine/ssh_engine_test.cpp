// SPDX-License-Identifier: Apache-2.0
// The native SSH engine (ssh-engine/, the code of the browser's mana-ssh module) against a real
// OpenSSH sshd from tools/devkit/sshd.mjs: handshake, password and key login, pty + shell, exec
// with exit status and stderr, a rejected host key, and a hostile server banner.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <variant>

#include "engine_harness.hpp"
#include "ssh_engine.hpp"

using mana::ssh::AuthKind;
using mana::ssh::AuthMethod;
using mana::ssh::CloseKind;
using mana::ssh::EngineConfig;
using mana::ssh::SshEngine;
using mana::ssh::test::Session;
using mana::ssh::test::sshd;
namespace event = mana::ssh::event;

namespace {

EngineConfig config_with(AuthMethod auth, std::string command = {}) {
  EngineConfig c;
  c.username = sshd().user;
  c.auth.push_back(std::move(auth));
  c.command = std::move(command);
  return c;
}

AuthMethod password(std::string secret) {
  return {AuthKind::password, std::move(secret), {}};
}
AuthMethod key() {
  return {AuthKind::publickey, sshd().user_key, {}};
}

}  // namespace

TEST_CASE("ssh engine: the handshake negotiates curve25519 + chacha20 and shows the host key",
          "[ssh-engine]") {
  Session s(config_with(key(), "true"), sshd().port, "handshake_exec_true");
  s.accept_fingerprint(sshd().host_fingerprint);
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  const event::KexDone* kex = nullptr;
  const event::HostKey* hk = nullptr;
  for (const auto& ev : s.events()) {
    if (const auto* k = std::get_if<event::KexDone>(&ev)) kex = k;
    if (const auto* h = std::get_if<event::HostKey>(&ev)) hk = h;
  }
  REQUIRE(kex != nullptr);
  CHECK(kex->kex.rfind("curve25519-sha256", 0) == 0);
  CHECK(kex->cipher_cs == "chacha20-poly1305@openssh.com");
  CHECK(kex->cipher_sc == "chacha20-poly1305@openssh.com");
  CHECK(kex->hostkey == "ssh-ed25519");
  REQUIRE(hk != nullptr);
  CHECK(hk->key_type == "ssh-ed25519");
  CHECK(hk->fingerprint == sshd().host_fingerprint);
  CHECK(s.ready());
  REQUIRE(s.exit());
  CHECK(s.exit()->code == 0);
  CHECK(s.closed()->kind == CloseKind::none);
  CHECK(s.engine().bytes_received() > 0);
}

TEST_CASE("ssh engine: password login runs a command", "[ssh-engine]") {
  Session s(config_with(password(sshd().password), "echo mana-$((6*7))"), sshd().port,
            "password_exec");
  s.accept_fingerprint(sshd().host_fingerprint);
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.out() == "mana-42\n");
  REQUIRE(s.exit());
  CHECK(s.exit()->code == 0);
  CHECK(s.closed()->kind == CloseKind::none);
}

TEST_CASE("ssh engine: a wrong password ends in auth_failed with the server's methods",
          "[ssh-engine]") {
  Session s(config_with(password("not-the-password"), "true"), sshd().port);
  s.accept_fingerprint(sshd().host_fingerprint);
  REQUIRE(s.run_until_closed(30000));
  INFO(s.describe());
  CHECK_FALSE(s.ready());
  CHECK(s.closed()->kind == CloseKind::auth_failed);
  CHECK(s.closed()->methods.find("publickey") != std::string::npos);
  CHECK(s.closed()->methods.find("password") != std::string::npos);
}

TEST_CASE("ssh engine: key login, exec with stderr and an exit status", "[ssh-engine]") {
  Session s(config_with(key(), "id -un; echo oops >&2; exit 7"), sshd().port, "key_exec_status");
  s.accept_fingerprint(sshd().host_fingerprint);
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.out() == sshd().user + "\n");
  CHECK(s.out(1) == "oops\n");
  REQUIRE(s.exit());
  CHECK(s.exit()->code == 7);
  CHECK(s.closed()->kind == CloseKind::none);
}

TEST_CASE("ssh engine: pty + shell echoes input and reports the shell's exit", "[ssh-engine]") {
  EngineConfig c = config_with(key());
  c.pty = true;
  c.cols = 100;
  c.rows = 30;
  c.env.emplace_back("LANG", "C");
  Session s(std::move(c), sshd().port, "pty_shell");
  s.accept_fingerprint(sshd().host_fingerprint);
  REQUIRE(s.run_until([&] { return s.ready(); }));
  s.write("stty size; echo pty-$((40+2))\n");
  REQUIRE(s.run_until([&] { return s.out().find("pty-42") != std::string::npos; }));
  INFO(s.describe());
  CHECK(s.out().find("30 100") != std::string::npos);              // the pty-req size
  CHECK(s.out().find("echo pty-$((40+2))") != std::string::npos);  // the pty echoes input
  s.engine().resize(120, 40);
  s.write("stty size; exit 3\n");
  REQUIRE(s.run_until_closed());
  CHECK(s.out().find("40 120") != std::string::npos);
  REQUIRE(s.exit());
  CHECK(s.exit()->code == 3);
  CHECK(s.closed()->kind == CloseKind::none);
}

TEST_CASE("ssh engine: a host key that is not accepted stops before authentication",
          "[ssh-engine]") {
  Session s(config_with(password(sshd().password), "true"), sshd().port);
  s.accept_fingerprint("SHA256:not-this-key");
  REQUIRE(s.run_until_closed());
  INFO(s.describe());
  CHECK(s.closed()->kind == CloseKind::hostkey_rejected);
  for (const auto& ev : s.events())
    CHECK_FALSE(std::holds_alternative<event::AuthResult>(ev));
}

// Sans-I/O: the "server" is a byte string pushed into the engine. A banner libssh2 can reject
// ends the engine at once with ssh_error; one it keeps waiting on (lines before the version line
// are allowed, RFC 4253 §4.2) ends with transport_closed when the connection closes. Never none.
TEST_CASE("ssh engine: a hostile or garbage server banner gives a typed close", "[ssh-engine]") {
  struct Case {
    std::string wire;
    bool closes_at_once;  // before the transport closes
    CloseKind kind;
    std::string message;
  };
  const std::string ended = "the transport closed before the SSH session ended";
  const Case cases[] = {
      {std::string(1, '\0') + "SSH-2.0-x\r\n", true, CloseKind::ssh_error, "Failed getting banner"},
      {std::string("SSH-2.0-x\r\n") + std::string(64, '\xff'), true, CloseKind::ssh_error,
       "Unable to exchange encryption keys"},  // packet length 0xffffffff
      // The transport ends before the session did: the engine's own message, after libssh2
      // processed everything received (it never sees a read of 0, ssh_engine.hpp invariant 2).
      {"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", false, CloseKind::transport_closed,
       ended},
      {std::string(70000, 'A'), false, CloseKind::transport_closed, ended},
      // libssh2 checks neither the protocol version nor the 255-byte limit of the version line:
      // both wait for a KEXINIT.
      {std::string("SSH-2.0-") + std::string(300, 'B') + "\r\n", false, CloseKind::transport_closed,
       ended},
      {"SSH-1.5-ancient\r\n", false, CloseKind::transport_closed, ended},
  };
  for (const auto& c : cases) {
    INFO(c.wire.substr(0, 40));
    EngineConfig config;
    config.username = "nobody";
    config.auth.push_back({AuthKind::password, "x", {}});
    SshEngine e(std::move(config));
    REQUIRE(e.push_input(reinterpret_cast<const std::uint8_t*>(c.wire.data()), c.wire.size()));
    std::optional<event::Closed> closed;
    bool closed_before_eof = false;
    for (int i = 0; i < 40 && !closed; ++i) {
      if (i == 20) e.transport_closed();
      e.step(i);
      while (auto ev = e.poll_event()) {
        if (auto* cl = std::get_if<event::Closed>(&*ev)) {
          closed = *cl;
          closed_before_eof = i < 20;
        }
      }
      std::uint8_t sink[4096];
      while (e.take_output(sink, sizeof sink) > 0) {
      }
    }
    REQUIRE(closed);
    CHECK(closed_before_eof == c.closes_at_once);
    CHECK(closed->kind == c.kind);
    CHECK(closed->code != 0);
    CHECK(closed->message == c.message);
    CHECK(e.state() == mana::ssh::EngineState::closed);
  }
}
